#include "manifests/yaml_value.hpp"

#include <charconv>
#include <optional>
#include <regex>
#include <sstream>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "util/booleans.hpp"

namespace pgc::manifests {

namespace {

// yaml-cpp marks are 0-based, with -1 for "unknown"; SourceLocation is 1-based, 0 for unknown.
SourceLocation location(const YAML::Mark& mark, const std::string& file) {
  if (mark.line < 0 || mark.column < 0) return SourceLocation{file, 0, 0};
  return SourceLocation{file, mark.line + 1, mark.column + 1};
}

std::string nesting_too_deep() {
  return "mappings and lists nested deeper than " + std::to_string(k_max_nesting_depth) + " levels (the limit)";
}

// yaml-cpp reports a tab in indentation as some other error ("illegal map value"): name the cause
// when the line it stopped at (0-based) is indented with a tab.
std::string tab_hint(const std::string& text, int line) {
  if (line < 0) return "";
  std::size_t start = 0;
  for (int i = 0; i < line && start != std::string::npos; ++i) {
    start = text.find('\n', start);
    if (start != std::string::npos) ++start;
  }
  if (start == std::string::npos) return "";
  for (std::size_t i = start; i < text.size() && (text[i] == ' ' || text[i] == '\t'); ++i)
    if (text[i] == '\t')
      return " (line " + std::to_string(line + 1) + " is indented with a tab; YAML indents with spaces only)";
  return "";
}

// The first byte of text that is not part of well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, at most U+10FFFF), or npos.
std::size_t invalid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto b = static_cast<unsigned char>(text[i]);
    std::size_t n = b < 0x80 ? 1 : (b >= 0xc2 && b <= 0xdf) ? 2 : (b >= 0xe0 && b <= 0xef) ? 3 : (b >= 0xf0 && b <= 0xf4) ? 4 : 0;
    if (n == 0 || i + n > text.size()) return i;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return i;
    auto b1 = static_cast<unsigned char>(text[i + 1 < text.size() ? i + 1 : i]);
    if ((b == 0xe0 && b1 < 0xa0) || (b == 0xed && b1 > 0x9f) || (b == 0xf0 && b1 < 0x90) || (b == 0xf4 && b1 > 0x8f))
      return i;
    i += n;
  }
  return std::string_view::npos;
}

// Sees only where each document starts: yaml-cpp 0.7 (Debian 12) loops forever on a flow
// indicator outside a flow collection ("," alone; jbeder/yaml-cpp#1040): the parser reports a
// null document at the ',' without consuming it, again and again, and LoadAll keeps every one of
// them, until memory runs out. A document that starts where the one before it started is that loop.
class DocumentStarts final : public YAML::EventHandler {
 public:
  YAML::Mark last;
  void OnDocumentStart(const YAML::Mark& mark) override { last = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Where yaml-cpp's parser stops making progress, if it does; throws what the parser throws.
std::optional<YAML::Mark> parser_stuck_at(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts starts;
  std::optional<int> previous;
  while (parser.HandleNextDocument(starts)) {
    if (previous && *previous == starts.last.pos) return starts.last;
    previous = starts.last.pos;
  }
  return std::nullopt;
}

// "unexpected ','" for the byte at mark, as a syntax error message.
std::string unexpected_at(const std::string& text, const YAML::Mark& mark) {
  if (mark.pos < 0 || static_cast<std::size_t>(mark.pos) >= text.size()) return "unexpected token";
  char c = text[static_cast<std::size_t>(mark.pos)];
  if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) return "unexpected token";
  std::string hint = c == ',' ? " (a flow indicator outside [...] or {...}; quote the value)" : "";
  return "unexpected '" + std::string(1, c) + "'" + hint;
}

// Thrown by Converter when the document exceeds a limit (or holds invalid UTF-8); becomes a
// YamlSyntaxError.
struct LimitExceeded {
  SourceLocation where;
  std::string message;
  YamlSyntaxError::Kind kind = YamlSyntaxError::Kind::limit;
};

// yaml-cpp nodes → YamlValue, counting nodes and depth: an alias is a shared node in yaml-cpp,
// but every use becomes a copy here, so the count is taken after expansion.
class Converter {
 public:
  explicit Converter(const std::string& file) : file_(file) {}

  YamlValue convert(const YAML::Node& node, int depth) {
    YamlValue out;
    out.where = location(node.Mark(), file_);
    if (++nodes_ > k_max_nodes)
      throw LimitExceeded{out.where, "more than " + std::to_string(k_max_nodes) +
                                         " YAML nodes once aliases are expanded (the limit per file)"};
    const bool nested = node.Type() == YAML::NodeType::Sequence || node.Type() == YAML::NodeType::Map;
    if (nested && depth > k_max_nesting_depth) throw LimitExceeded{out.where, nesting_too_deep()};
    fill(node, out, depth);
    return out;
  }

 private:
  // Counts text a node or key copies (an alias copies its anchor's text at every use) and checks
  // it is UTF-8: JSON (render, Patroni's REST API) cannot carry anything else.
  void count_bytes(const std::string& text, const SourceLocation& where) {
    if (auto bad = invalid_utf8(text); bad != std::string_view::npos) {
      static const char* digits = "0123456789abcdef";
      auto b = static_cast<unsigned char>(text[bad]);
      throw LimitExceeded{where, std::string("invalid UTF-8 (byte 0x") + digits[b >> 4] + digits[b & 0xf] + ")",
                          YamlSyntaxError::Kind::syntax};
    }
    bytes_ += text.size();
    if (bytes_ > k_max_expanded_bytes)
      throw LimitExceeded{where, "more than " + std::to_string(k_max_expanded_bytes) +
                                     " bytes of keys and values once aliases are expanded (the limit per file)"};
  }

  void fill(const YAML::Node& node, YamlValue& out, int depth);

  const std::string& file_;
  std::size_t nodes_ = 0;
  std::size_t bytes_ = 0;
};

void Converter::fill(const YAML::Node& node, YamlValue& out, int depth) {
  const std::string& file = file_;
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      out.kind = YamlValue::Kind::scalar;
      out.text = node.Scalar();
      count_bytes(out.text, out.where);
      // "!" is yaml-cpp's tag for quoted scalars; an explicit !!str also means "a string".
      out.quoted = node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str";
      break;
    case YAML::NodeType::Sequence:
      out.kind = YamlValue::Kind::list;
      for (const auto& item : node) out.items.push_back(convert(item, depth + 1));
      break;
    case YAML::NodeType::Map:
      out.kind = YamlValue::Kind::map;
      for (auto it = node.begin(); it != node.end(); ++it) {
        YamlEntry entry;
        entry.key = it->first.IsScalar() ? it->first.Scalar() : std::string("<complex key>");
        entry.key_where = location(it->first.Mark(), file);
        count_bytes(entry.key, entry.key_where);
        entry.value = convert(it->second, depth + 1);
        out.entries.push_back(std::move(entry));
      }
      break;
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out.kind = YamlValue::Kind::null;
      break;
  }
}

}  // namespace

std::string file_too_large(std::uintmax_t size) {
  return "file is " + std::to_string(size) + " bytes, more than the limit of " + std::to_string(k_max_file_bytes) +
         " (4 MiB)";
}

const YamlValue* YamlValue::find(std::string_view key) const {
  for (const auto& entry : entries)
    if (entry.key == key) return &entry.value;
  return nullptr;
}

std::string YamlValue::describe() const {
  switch (kind) {
    case Kind::scalar: return "\"" + text + "\"";
    case Kind::map: return "a mapping";
    case Kind::list: return "a list";
    case Kind::null: break;
  }
  return "null";
}

std::expected<std::vector<YamlValue>, YamlSyntaxError> parse_yaml(const std::string& text,
                                                                  const std::string& file_name) {
  if (text.size() > k_max_file_bytes)
    return std::unexpected(YamlSyntaxError{SourceLocation{file_name, 0, 0}, file_too_large(text.size()),
                                           YamlSyntaxError::Kind::limit});
  std::vector<YAML::Node> documents;
  try {
    if (auto stuck = parser_stuck_at(text))
      return std::unexpected(YamlSyntaxError{location(*stuck, file_name), unexpected_at(text, *stuck)});
    documents = YAML::LoadAll(text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own guard (2000 levels) says only "bad file"; this is the same limit as ours.
    return std::unexpected(YamlSyntaxError{location(e.mark, file_name), nesting_too_deep(), YamlSyntaxError::Kind::limit});
  } catch (const YAML::Exception& e) {
    return std::unexpected(YamlSyntaxError{location(e.mark, file_name), e.msg + tab_hint(text, e.mark.line)});
  }
  std::vector<YamlValue> out;
  Converter converter(file_name);
  try {
    for (const auto& document : documents) {
      if (document.IsNull() || !document.IsDefined()) continue;
      out.push_back(converter.convert(document, 1));
    }
  } catch (const LimitExceeded& e) {
    return std::unexpected(YamlSyntaxError{e.where, e.message, e.kind});
  }
  return out;
}

ScalarType scalar_type(const YamlValue& value) {
  if (value.kind == YamlValue::Kind::null) return ScalarType::null;
  if (value.quoted) return ScalarType::string;
  if (scalar_boolean(value)) return ScalarType::boolean;
  if (scalar_integer(value)) return ScalarType::integer;
  static const std::regex floating(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (std::regex_match(value.text, floating)) return ScalarType::floating;
  return ScalarType::string;
}

std::optional<long long> scalar_integer(const YamlValue& value) {
  if (value.kind != YamlValue::Kind::scalar || value.quoted || value.text.empty()) return std::nullopt;
  std::string_view text(value.text);
  if (text.front() == '+') text.remove_prefix(1);
  long long result = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), result);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return result;
}

std::optional<bool> scalar_boolean(const YamlValue& value) {
  if (value.kind != YamlValue::Kind::scalar || value.quoted) return std::nullopt;
  return yaml_boolean(value.text);
}

nlohmann::json to_json(const YamlValue& value) {
  switch (value.kind) {
    case YamlValue::Kind::null: return nullptr;
    case YamlValue::Kind::list: {
      auto out = nlohmann::json::array();
      for (const auto& item : value.items) out.push_back(to_json(item));
      return out;
    }
    case YamlValue::Kind::map: {
      auto out = nlohmann::json::object();
      for (const auto& entry : value.entries)
        if (!out.contains(entry.key)) out[entry.key] = to_json(entry.value);
      return out;
    }
    case YamlValue::Kind::scalar: break;
  }
  switch (scalar_type(value)) {
    case ScalarType::boolean: return *scalar_boolean(value);
    case ScalarType::integer: return *scalar_integer(value);
    case ScalarType::floating: return std::stod(value.text);
    case ScalarType::null: return nullptr;
    case ScalarType::string: break;
  }
  return value.text;
}

}  // namespace pgc::manifests
