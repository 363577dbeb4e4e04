#include "manifests/dynamic_config.hpp"

#include <algorithm>
#include <map>
#include <regex>

#include "manifests/line_break_scan.hpp"
#include "manifests/pg_hba_rules.hpp"
#include "manifests/schema.hpp"
#include "util/line_breaks.hpp"
#include "util/strings.hpp"

namespace pgc::manifests {

namespace {

using json = nlohmann::json;

enum class KeyType { integer, boolean, slots, ignore_slots, postgresql, owned, ignored };

struct KeyRule {
  KeyType type;
  std::string note;  // owned: the field that sets it; ignored: why it is not taken
};

// Patroni 3.0.2's dynamic configuration keys. Integers are read with int() by Patroni (a string
// or an object there makes it drop the whole change, or fail); master_* are the old names of
// primary_*.
const std::map<std::string, KeyRule, std::less<>>& rules() {
  static const std::map<std::string, KeyRule, std::less<>> table{
      {"ttl", {KeyType::integer, ""}},
      {"loop_wait", {KeyType::integer, ""}},
      {"retry_timeout", {KeyType::integer, ""}},
      {"maximum_lag_on_failover", {KeyType::integer, ""}},
      {"maximum_lag_on_syncnode", {KeyType::integer, ""}},
      {"max_timelines_history", {KeyType::integer, ""}},
      {"primary_start_timeout", {KeyType::integer, ""}},
      {"primary_stop_timeout", {KeyType::integer, ""}},
      {"master_start_timeout", {KeyType::integer, ""}},
      {"master_stop_timeout", {KeyType::integer, ""}},
      {"check_timeline", {KeyType::boolean, ""}},
      {"failsafe_mode", {KeyType::boolean, ""}},
      {"slots", {KeyType::slots, ""}},
      {"ignore_slots", {KeyType::ignore_slots, ""}},
      {"synchronous_mode", {KeyType::owned, "spec.replication.mode"}},
      {"synchronous_mode_strict", {KeyType::owned, "spec.replication.mode"}},
      {"synchronous_node_count", {KeyType::owned, "spec.replication.syncInstances"}},
      // Only pg_hba is taken (StackGres's rule, manifests/pg_hba_rules.hpp); the compiler warns
      // that the other keys are ignored (postgresql_key_ignored_reason).
      {"postgresql", {KeyType::postgresql, ""}},
      {"standby_cluster", {KeyType::ignored, "standby clusters are not supported"}},
      {"pause", {KeyType::ignored, "maintenance mode is not declared; pgconverge never touches it"}},
  };
  return table;
}

constexpr long long k_max_integer = 1'000'000'000;

std::string describe(const json& value) {
  if (value.is_string()) return "the string " + value.dump();
  if (value.is_object()) return "a mapping";
  if (value.is_array()) return "a list";
  return value.dump();
}

class Checker {
 public:
  Checker(std::vector<DynamicConfigFinding>& out, bool scanned, bool tls) : out_(out), scanned_(scanned), tls_(tls) {}

  // A key or string scan_line_breaks already reported.
  [[nodiscard]] bool reported_key(const std::string& key) const { return scanned_ && scan_refuses_key(key); }
  [[nodiscard]] bool reported_value(const json& value) const {
    return scanned_ && value.is_string() && scan_refuses_value(value.get_ref<const std::string&>());
  }

  void refuse(const std::string& field, std::string message) { out_.push_back({field, std::move(message)}); }

  void integer(const std::string& field, const json& value) {
    if (!value.is_number_integer())
      refuse(field, "must be an integer (got " + describe(value) + ")");
    else if (!value.is_number_unsigned() && value.get<long long>() < 0)
      refuse(field, "must be at least 0, got " + value.dump());
    else if (value.is_number_unsigned() ? value.get<unsigned long long>() > k_max_integer
                                        : value.get<long long>() > k_max_integer)
      refuse(field, "must be at most " + std::to_string(k_max_integer) + ", got " + value.dump());
  }

  void boolean(const std::string& field, const json& value) {
    if (!value.is_boolean()) refuse(field, "must be a boolean (true or false) (got " + describe(value) + ")");
  }

  // A string that matches form (described by rule), one line.
  bool text(const std::string& field, const json& value, const std::regex& form, const std::string& rule) {
    if (reported_value(value)) return false;
    if (!value.is_string()) {
      refuse(field, "must be a string (got " + describe(value) + ")");
      return false;
    }
    const auto& s = value.get_ref<const std::string&>();
    if (auto found = find_line_break(s)) {
      refuse(field, line_break_message(*found));
      return false;
    }
    if (!std::regex_match(s, form)) {
      refuse(field, "must match " + rule + " (got " + value.dump() + ")");
      return false;
    }
    return true;
  }

  // One slot's attributes (a permanent slot or an ignore_slots matcher): type, database, plugin
  // (and name for a matcher), each a plain identifier; an output plugin is a library name in
  // $libdir, never a path.
  void slot_attributes(const std::string& field, const json& value, bool matcher) {
    static const std::vector<std::string> permanent{"type", "database", "plugin"};
    static const std::vector<std::string> matchers{"name", "type", "database", "plugin"};
    const auto& allowed = matcher ? matchers : permanent;
    if (!value.is_object()) {
      refuse(field, "must be a mapping of " + join_or(allowed) + " (got " + describe(value) + ")");
      return;
    }
    if (matcher && value.empty()) refuse(field, "must name at least one of " + join_or(allowed));
    for (auto it = value.begin(); it != value.end(); ++it) {
      const std::string& key = it.key();
      const std::string sub = child_path(field, key);
      if (reported_key(key)) continue;
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string message = "unknown slot attribute " + json(key).dump() + " (known: " + join_or(allowed) + ")";
        if (auto hint = did_you_mean(key, allowed)) message += " (did you mean '" + *hint + "'?)";
        refuse(sub, message);
      } else if (key == "type") {
        static const std::regex type("physical|logical");
        text(sub, it.value(), type, "physical or logical");
      } else if (key == "name") {
        slot_name(sub, it.value());
      } else if (key == "database") {
        static const std::regex database("[A-Za-z_][A-Za-z0-9_$-]{0,62}");
        text(sub, it.value(), database, "^[A-Za-z_][A-Za-z0-9_$-]{0,62}$");
      } else {
        static const std::regex plugin("[A-Za-z_][A-Za-z0-9_-]{0,62}");
        text(sub, it.value(), plugin, "^[A-Za-z_][A-Za-z0-9_-]{0,62}$ (a library name, not a path)");
      }
    }
    if (!matcher && value.contains("type") && value["type"] == "logical")
      for (const char* needed : {"database", "plugin"})
        if (!value.contains(needed)) refuse(child_path(field, needed), "is required for a logical slot");
  }

  // PostgreSQL's replication slot names: lower-case letters, digits, underscore, at most 63.
  bool slot_name(const std::string& field, const json& value) {
    static const std::regex form("[a-z0-9_]{1,63}");
    return text(field, value, form, "^[a-z0-9_]{1,63}$ (a replication slot name)");
  }

  void slots(const std::string& field, const json& value) {
    if (!value.is_object()) {
      refuse(field, "must be a mapping of slot names to {type, database, plugin} (got " + describe(value) + ")");
      return;
    }
    for (auto it = value.begin(); it != value.end(); ++it) {
      const std::string sub = child_path(field, it.key());
      if (reported_key(it.key()) || !slot_name(sub, json(it.key()))) continue;
      if (!it.value().is_null()) slot_attributes(sub, it.value(), false);
    }
  }

  // postgresql: a mapping; its pg_hba a list of rules (pg_hba_rules.hpp); other keys ignored.
  void postgresql(const std::string& field, const json& value) {
    if (!value.is_object()) {
      refuse(field, "must be a mapping (got " + describe(value) + ")");
      return;
    }
    auto hba = value.find("pg_hba");
    if (hba == value.end() || hba->is_null()) return;
    const std::string list = child_path(field, "pg_hba");
    if (!hba->is_array()) {
      refuse(list, "must be a list of pg_hba lines (got " + describe(*hba) + ")");
      return;
    }
    for (std::size_t i = 0; i < hba->size(); ++i) {
      const json& line = (*hba)[i];
      const std::string item = item_path(list, i);
      if (reported_value(line)) continue;
      if (!line.is_string()) {
        refuse(item, "must be a string (got " + describe(line) + ")");
      } else if (auto found = find_line_break(line.get_ref<const std::string&>())) {
        refuse(item, line_break_message(*found));
      } else if (auto why = refuse_pg_hba_line(line.get_ref<const std::string&>(), tls_)) {
        refuse(item, line.dump() + ": " + *why);
      }
    }
  }

  void ignore_slots(const std::string& field, const json& value) {
    if (!value.is_array()) {
      refuse(field, "must be a list of {name, type, database, plugin} (got " + describe(value) + ")");
      return;
    }
    for (std::size_t i = 0; i < value.size(); ++i) slot_attributes(item_path(field, i), value[i], true);
  }

 private:
  std::vector<DynamicConfigFinding>& out_;
  bool scanned_;
  bool tls_;
};

}  // namespace

const std::vector<std::string>& dynamic_config_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> out;
    for (const auto& [key, rule] : rules()) out.push_back(key);
    return out;
  }();
  return keys;
}

std::optional<std::string> ignored_dynamic_key_reason(std::string_view key) {
  auto it = rules().find(key);
  if (it == rules().end() || it->second.type != KeyType::ignored) return std::nullopt;
  return it->second.note;
}

bool passed_dynamic_key(std::string_view key) {
  auto it = rules().find(key);
  return it != rules().end() && it->second.type != KeyType::ignored && it->second.type != KeyType::owned &&
         it->second.type != KeyType::postgresql;
}

std::optional<std::string> postgresql_key_ignored_reason(std::string_view key) {
  if (key == "pg_hba") return std::nullopt;
  if (key == "parameters") return "PostgreSQL parameters come from the SGPostgresConfig";
  if (key == "use_slots" || key == "use_pg_rewind") return "pgconverge sets it, as StackGres does";
  return "StackGres takes only pg_hba from dynamicConfig.postgresql";
}

std::vector<DynamicConfigFinding> check_dynamic_config(const nlohmann::json& config, const std::string& base,
                                                       bool scanned, bool tls) {
  std::vector<DynamicConfigFinding> out;
  Checker check(out, scanned, tls);
  if (!config.is_object()) {
    if (!config.is_null()) check.refuse(base, "must be a mapping (got " + describe(config) + ")");
    return out;
  }
  for (auto it = config.begin(); it != config.end(); ++it) {
    const std::string& key = it.key();
    const json& value = it.value();
    const std::string field = child_path(base, key);
    if (check.reported_key(key)) continue;
    auto rule = rules().find(key);
    if (rule == rules().end()) {
      std::string message = "unknown key " + json(key).dump() + ": not one of Patroni 3.0.2's dynamic configuration keys";
      if (auto hint = did_you_mean(key, dynamic_config_keys())) message += " (did you mean '" + *hint + "'?)";
      else message += " (" + join(dynamic_config_keys(), ", ") + ")";
      check.refuse(field, message);
      continue;
    }
    if (rule->second.type == KeyType::owned) {
      check.refuse(field, "owned by pgconverge; set " + rule->second.note + " instead");
      continue;
    }
    if (value.is_null()) continue;
    switch (rule->second.type) {
      case KeyType::integer: check.integer(field, value); break;
      case KeyType::boolean: check.boolean(field, value); break;
      case KeyType::slots: check.slots(field, value); break;
      case KeyType::ignore_slots: check.ignore_slots(field, value); break;
      case KeyType::postgresql: check.postgresql(field, value); break;
      case KeyType::owned:
      case KeyType::ignored: break;
    }
  }
  return out;
}

}  // namespace pgc::manifests
