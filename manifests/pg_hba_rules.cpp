#include "manifests/pg_hba_rules.hpp"

#include <algorithm>
#include <charconv>
#include <regex>
#include <set>

#include "util/net_address.hpp"

namespace pgc::manifests {
namespace {

// One token of a pg_hba line and whether any of it was quoted ("@x" quoted is a name, not a file).
struct Token {
  std::string text;
  bool quoted = false;
};

// Splits like PostgreSQL's pg_hba reader: blanks separate tokens, double quotes quote (a doubled
// quote inside is one quote). A comment or an unclosed quote is refused.
std::optional<std::string> tokenize(std::string_view line, std::vector<Token>& out) {
  Token current;
  bool in_token = false, in_quotes = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') return "holds a control character";
    if (in_quotes) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        current.text += '"';
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        current.text += c;
      }
      continue;
    }
    if (c == ' ' || c == '\t') {
      if (in_token) out.push_back(std::move(current));
      current = Token{};
      in_token = false;
      continue;
    }
    if (c == '#') return "holds a comment ('#'): write the rule alone";
    in_token = true;
    if (c == '"') {
      in_quotes = true;
      current.quoted = true;
    } else {
      current.text += c;
    }
  }
  if (in_quotes) return "has an unclosed double quote";
  if (in_token) out.push_back(std::move(current));
  return std::nullopt;
}

bool is_loopback(const std::string& address, const std::string& mask) {
  if (address == "samehost") return true;  // the server's own addresses: never crosses the network
  auto slash = address.find('/');
  std::string ip = address.substr(0, slash);
  int prefix = -1;
  if (slash != std::string::npos) {
    auto digits = std::string_view(address).substr(slash + 1);
    if (std::from_chars(digits.data(), digits.data() + digits.size(), prefix).ec != std::errc()) return false;
  }
  if (is_ipv4(ip) && ip.starts_with("127."))
    return (slash != std::string::npos && prefix >= 8) || mask.starts_with("255.");
  if (ip == "::1") return prefix == 128 || mask == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  return false;
}

// An address field: a CIDR, a keyword, or a host name (PostgreSQL resolves it).
bool valid_address(const std::string& a) {
  if (a == "all" || a == "samehost" || a == "samenet") return true;
  if (auto slash = a.find('/'); slash != std::string::npos) {
    std::string ip = a.substr(0, slash), digits = a.substr(slash + 1);
    int prefix = -1;
    if (digits.empty() || std::from_chars(digits.data(), digits.data() + digits.size(), prefix).ec != std::errc())
      return false;
    return (is_ipv4(ip) && prefix >= 0 && prefix <= 32) || (is_ipv6(ip) && prefix >= 0 && prefix <= 128);
  }
  static const std::regex name(R"(\.?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)");
  return is_ipv4(a) || is_ipv6(a) || std::regex_match(a, name);
}

// Why an authentication method is refused, or nullopt.
std::optional<std::string> refuse_method(const std::string& method, bool local) {
  static const std::set<std::string> allowed{"scram-sha-256", "md5", "password", "reject"};
  if (allowed.contains(method)) return std::nullopt;
  if (method == "peer")
    return local ? std::nullopt : std::optional<std::string>("method peer is only for local lines");
  if (method == "trust" || method == "ident" || method == "cert")
    return "method " + method +
           " logs in without a password pgconverge holds: a superuser's connection could run programs on the "
           "host (COPY ... TO PROGRAM); use scram-sha-256";
  static const std::set<std::string> host_configured{"gss", "sspi", "ldap", "radius", "pam", "bsd"};
  if (host_configured.contains(method))
    return "method " + method +
           " needs configuration of the host pgconverge does not manage (Kerberos, LDAP, RADIUS, PAM, BSD auth)";
  return "unknown authentication method \"" + method + "\"";
}

// Why an option (name=value after the method) is refused, or nullopt.
std::optional<std::string> refuse_option(const std::string& option, const std::string& type) {
  auto eq = option.find('=');
  if (eq == std::string::npos) return "option \"" + option + "\" is not name=value";
  std::string name = option.substr(0, eq), value = option.substr(eq + 1);
  if (name == "clientcert") {
    if (type != "hostssl") return "option clientcert is only for hostssl lines";
    if (value != "verify-ca" && value != "verify-full") return "clientcert must be verify-ca or verify-full";
    return std::nullopt;
  }
  return "option \"" + name + "\" is not supported (pgconverge manages no pg_ident.conf and no authentication server)";
}

std::optional<std::string> refuse_tokens(const std::vector<Token>& t, bool tls) {
  if (t.empty()) return "is empty";
  static const std::set<std::string> types{"local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc"};
  const std::string& type = t[0].text;
  if (!t[0].quoted && type.starts_with("include"))
    return "\"" + type + "\" reads a file of the host; only rules are accepted";
  if (t[0].quoted || !types.contains(type))
    return "unknown connection type \"" + type + "\" (local, host, hostssl, hostnossl)";
  for (const auto& token : t)
    if (!token.quoted && token.text.find('@') == 0)
      return "\"" + token.text + "\" (@file) reads a file of the host; list the names";
  if (type == "hostgssenc" || type == "hostnogssenc") return type + ": GSSAPI is not set up by pgconverge";
  const bool local = type == "local";
  std::size_t at = 3;  // the first field after database and user
  std::string address, mask;
  if (!local) {
    if (t.size() < 4) return "has no address";
    address = t[3].text;
    if (!valid_address(address)) return "address \"" + address + "\" is not a CIDR, a host name or all/samehost/samenet";
    at = 4;
    if (address.find('/') == std::string::npos && (is_ipv4(address) || is_ipv6(address))) {
      if (t.size() < 5 || !(is_ipv4(t[4].text) || is_ipv6(t[4].text)))
        return "address \"" + address + "\" needs a /prefix or a mask";
      mask = t[4].text;
      at = 5;
    }
  }
  if (t.size() < 3 || t.size() <= at) return "has no authentication method";
  if (auto why = refuse_method(t[at].text, local)) return why;
  for (std::size_t i = at + 1; i < t.size(); ++i)
    if (auto why = refuse_option(t[i].text, type)) return why;
  if (tls && (type == "host" || type == "hostnossl") && !is_loopback(address, mask))
    return "admits connections from " + address +
           " without TLS while the cluster's TLS is on (spec.postgres.ssl); write hostssl";
  return std::nullopt;
}

}  // namespace

std::optional<std::string> refuse_pg_hba_line(std::string_view line, bool tls) {
  std::vector<Token> tokens;
  if (auto why = tokenize(line, tokens)) return why;
  return refuse_tokens(tokens, tls);
}

std::vector<std::string> declared_pg_hba(const nlohmann::json& dynamic_config) {
  std::vector<std::string> lines;
  if (!dynamic_config.is_object()) return lines;
  auto postgresql = dynamic_config.find("postgresql");
  if (postgresql == dynamic_config.end() || !postgresql->is_object()) return lines;
  auto hba = postgresql->find("pg_hba");
  if (hba == postgresql->end() || !hba->is_array()) return lines;
  for (const auto& line : *hba) {
    if (!line.is_string()) return {};
    lines.push_back(line.get<std::string>());
  }
  return lines;
}

}  // namespace pgc::manifests
