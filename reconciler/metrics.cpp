// The registry keeps everything in ordered maps under one mutex: pgconverge has a few dozen
// series and is scraped every few seconds, so simplicity beats lock-free counters.

#include "reconciler/metrics.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace pgc::reconciler {

namespace {

bool valid_name(const std::string& name, bool allow_colon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char ch = name[i];
    bool letter = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || (allow_colon && ch == ':');
    bool digit = ch >= '0' && ch <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return true;
}

// Go's formatting as Prometheus prints it: integers without exponent, +Inf, -Inf, NaN.
std::string format_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  bool integral = value == std::floor(value) && std::fabs(value) < 1e15;
  auto result = integral ? std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed)
                         : std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::string escape_label_value(const std::string& value) {
  std::string out;
  for (char ch : value) {
    if (ch == '\\') out += "\\\\";
    else if (ch == '"') out += "\\\"";
    else if (ch == '\n') out += "\\n";
    else out += ch;
  }
  return out;
}

std::string escape_help(const std::string& help) {
  std::string out;
  for (char ch : help) {
    if (ch == '\\') out += "\\\\";
    else if (ch == '\n') out += "\\n";
    else out += ch;
  }
  return out;
}

// {a="x",b="y"} plus an optional extra pair (the histogram's le); empty when there is nothing.
std::string label_set(const std::vector<std::string>& names, const std::vector<std::string>& values,
                      const std::string& extra_name = {}, const std::string& extra_value = {}) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    out += out.empty() ? "{" : ",";
    out += extra_name + "=\"" + extra_value + "\"";
  }
  if (!out.empty()) out += "}";
  return out;
}

const char* type_name(MetricType type) {
  switch (type) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

void MetricsRegistry::add(const std::string& name, Family family) {
  if (!valid_name(name, true)) throw std::logic_error("metrics: invalid metric name \"" + name + "\"");
  for (const auto& label : family.label_names) {
    if (!valid_name(label, false) || label.starts_with("__") ||
        (family.type == MetricType::histogram && label == "le"))
      throw std::logic_error("metrics: " + name + ": invalid label name \"" + label + "\"");
  }
  for (std::size_t i = 0; i < family.bounds.size(); ++i) {
    if (!std::isfinite(family.bounds[i]) || (i > 0 && family.bounds[i] <= family.bounds[i - 1]))
      throw std::logic_error("metrics: " + name + ": bucket bounds must be finite and strictly increasing");
  }
  std::lock_guard lock(mutex_);
  if (families_.contains(name)) throw std::logic_error("metrics: " + name + " declared twice");
  auto& added = families_.emplace(name, std::move(family)).first->second;
  if (added.label_names.empty()) added.series[{}].hits.assign(added.type == MetricType::histogram ? added.bounds.size() + 1 : 0, 0);
}

void MetricsRegistry::add_counter(const std::string& name, const std::string& help, std::vector<std::string> label_names) {
  add(name, Family{MetricType::counter, help, std::move(label_names), {}, {}});
}

void MetricsRegistry::add_gauge(const std::string& name, const std::string& help, std::vector<std::string> label_names) {
  add(name, Family{MetricType::gauge, help, std::move(label_names), {}, {}});
}

void MetricsRegistry::add_histogram(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names, std::vector<double> bounds) {
  add(name, Family{MetricType::histogram, help, std::move(label_names), std::move(bounds), {}});
}

// Requires mutex_ held.
MetricsRegistry::Series& MetricsRegistry::series(const std::string& name, MetricType type,
                                                 const std::vector<std::string>& label_values) {
  auto it = families_.find(name);
  if (it == families_.end()) throw std::logic_error("metrics: " + name + " was not declared");
  auto& family = it->second;
  if (family.type != type) throw std::logic_error("metrics: " + name + " is a " + type_name(family.type));
  if (label_values.size() != family.label_names.size())
    throw std::logic_error("metrics: " + name + " takes " + std::to_string(family.label_names.size()) +
                           " label values, not " + std::to_string(label_values.size()));
  auto [series_it, inserted] = family.series.try_emplace(label_values);
  if (inserted && type == MetricType::histogram) series_it->second.hits.assign(family.bounds.size() + 1, 0);
  return series_it->second;
}

void MetricsRegistry::increment(const std::string& name, const std::vector<std::string>& label_values, double amount) {
  if (!(amount >= 0)) throw std::logic_error("metrics: " + name + ": a counter only goes up");
  std::lock_guard lock(mutex_);
  series(name, MetricType::counter, label_values).value += amount;
}

void MetricsRegistry::set(const std::string& name, const std::vector<std::string>& label_values, double value) {
  std::lock_guard lock(mutex_);
  series(name, MetricType::gauge, label_values).value = value;
}

void MetricsRegistry::set_total(const std::string& name, const std::vector<std::string>& label_values, double value) {
  std::lock_guard lock(mutex_);
  series(name, MetricType::counter, label_values).value = value;
}

void MetricsRegistry::set_only(const std::string& name, const std::vector<std::string>& label_values, double value) {
  std::lock_guard lock(mutex_);
  auto& target = series(name, MetricType::gauge, label_values);
  target.value = value;
  auto& all = families_.at(name).series;
  std::erase_if(all, [&](const auto& entry) { return entry.first != label_values; });
}

void MetricsRegistry::observe(const std::string& name, const std::vector<std::string>& label_values, double value) {
  std::lock_guard lock(mutex_);
  auto& s = series(name, MetricType::histogram, label_values);
  const auto& bounds = families_.at(name).bounds;
  std::size_t bucket = 0;
  while (bucket < bounds.size() && !(value <= bounds[bucket])) ++bucket;
  ++s.hits[bucket];
  s.sum += value;
  ++s.count;
}

void MetricsRegistry::remove(const std::string& name, const std::vector<std::string>& label_values) {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end()) throw std::logic_error("metrics: " + name + " was not declared");
  it->second.series.erase(label_values);
}

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, family] : families_) {
    if (family.series.empty()) continue;
    out += "# HELP " + name + " " + escape_help(family.help) + "\n";
    out += "# TYPE " + name + " " + type_name(family.type) + "\n";
    for (const auto& [values, s] : family.series) {
      if (family.type != MetricType::histogram) {
        out += name + label_set(family.label_names, values) + " " + format_number(s.value) + "\n";
        continue;
      }
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < s.hits.size(); ++i) {
        cumulative += s.hits[i];
        auto le = i < family.bounds.size() ? format_number(family.bounds[i]) : "+Inf";
        out += name + "_bucket" + label_set(family.label_names, values, "le", le) + " " + std::to_string(cumulative) + "\n";
      }
      out += name + "_sum" + label_set(family.label_names, values) + " " + format_number(s.sum) + "\n";
      out += name + "_count" + label_set(family.label_names, values) + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

namespace {

constexpr const char* k_reconcile_duration = "pgconverge_reconcile_duration_seconds";
constexpr const char* k_reconcile_total = "pgconverge_reconcile_total";
constexpr const char* k_revision = "pgconverge_last_applied_revision_info";
constexpr const char* k_cluster_ready = "pgconverge_cluster_ready";
constexpr const char* k_sync_desired = "pgconverge_cluster_sync_standbys_desired";
constexpr const char* k_sync_observed = "pgconverge_cluster_sync_standbys_observed";
constexpr const char* k_webhook_requests = "pgconverge_webhook_requests_total";
constexpr const char* k_fetch_failures = "pgconverge_source_fetch_failures_total";
constexpr const char* k_webhook_triggers = "pgconverge_webhook_triggers_total";
constexpr const char* k_http_connections = "pgconverge_http_connections_total";

}  // namespace

Metrics::Metrics() {
  // A reconcile takes seconds (nothing to do) to many minutes (bootstrap, rolling restarts).
  registry_.add_histogram(k_reconcile_duration, "Duration of reconcile runs in seconds.", {"result"},
                          {0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800});
  registry_.add_counter(k_reconcile_total, "Reconcile runs by result.", {"result"});
  registry_.add_gauge(k_revision, "The source revision last applied (value is always 1).", {"revision", "source"});
  registry_.add_gauge(k_cluster_ready, "Whether the cluster was observed converged and ready (1) or not (0).",
                      {"namespace", "cluster"});
  registry_.add_gauge(k_sync_desired, "Synchronous standbys the manifests ask for.", {"namespace", "cluster"});
  registry_.add_gauge(k_sync_observed, "Synchronous standbys observed in Patroni.", {"namespace", "cluster"});
  registry_.add_counter(k_webhook_requests, "Webhook requests by receiver and HTTP status.", {"receiver", "status"});
  registry_.add_counter(k_fetch_failures, "Failed fetches of the manifest source.");
  registry_.add_counter(k_webhook_triggers,
                        "Verified webhooks by receiver and what they did to the runs (queued, delayed, coalesced).",
                        {"receiver", "outcome"});
  registry_.add_counter(k_http_connections,
                        "HTTP connections by listener and outcome (accepted, refused, evicted, head_timeout, "
                        "request_timeout).",
                        {"listener", "outcome"});
}

void Metrics::observe_reconcile(const std::string& result, double seconds) {
  registry_.observe(k_reconcile_duration, {result}, seconds);
  registry_.increment(k_reconcile_total, {result});
}

void Metrics::set_revision(const std::string& revision, const std::string& source) {
  registry_.set_only(k_revision, {revision, source}, 1);
}

void Metrics::set_cluster(const std::string& ns, const std::string& name, bool ready, int desired, int observed) {
  registry_.set(k_cluster_ready, {ns, name}, ready ? 1 : 0);
  registry_.set(k_sync_desired, {ns, name}, desired);
  registry_.set(k_sync_observed, {ns, name}, observed);
}

void Metrics::remove_cluster(const std::string& ns, const std::string& name) {
  for (const char* family : {k_cluster_ready, k_sync_desired, k_sync_observed}) registry_.remove(family, {ns, name});
}

void Metrics::count_webhook(const std::string& receiver, int status) {
  registry_.increment(k_webhook_requests, {receiver, std::to_string(status)});
}

void Metrics::count_fetch_failure() { registry_.increment(k_fetch_failures, {}); }

void Metrics::count_webhook_trigger(const std::string& receiver, const std::string& outcome) {
  registry_.increment(k_webhook_triggers, {receiver, outcome});
}

void Metrics::set_http_connections(const std::string& listener, const std::string& outcome, double total) {
  registry_.set_total(k_http_connections, {listener, outcome}, total);
}

}  // namespace pgc::reconciler
