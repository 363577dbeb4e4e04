#pragma once
// Prometheus metrics for `pgconverge serve`: a small registry rendering the text exposition
// format 0.0.4, and the pgconverge families on top of it.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace pgc::reconciler {

enum class MetricType { counter, gauge, histogram };

// Metric families and their series. Thread-safe. Using an undeclared family, the wrong type or
// the wrong number of label values is a programming error (std::logic_error).
class MetricsRegistry {
 public:
  // Declares a family; names must match Prometheus' grammar and are unique. A family without
  // labels has its one series (at 0) from the start; others appear when first set.
  void add_counter(const std::string& name, const std::string& help, std::vector<std::string> label_names = {});
  void add_gauge(const std::string& name, const std::string& help, std::vector<std::string> label_names = {});
  // bounds are the finite upper bounds ("le", inclusive), strictly increasing; +Inf is implied.
  void add_histogram(const std::string& name, const std::string& help, std::vector<std::string> label_names,
                     std::vector<double> bounds);

  // Adds amount (≥ 0) to a counter series.
  void increment(const std::string& name, const std::vector<std::string>& label_values, double amount = 1);
  // Sets a gauge series.
  void set(const std::string& name, const std::vector<std::string>& label_values, double value);
  // Sets a counter series to a total counted elsewhere (which only grows).
  void set_total(const std::string& name, const std::vector<std::string>& label_values, double value);
  // Sets a gauge series and removes every other series of the family, in one step.
  void set_only(const std::string& name, const std::vector<std::string>& label_values, double value);
  // Records one observation in a histogram series.
  void observe(const std::string& name, const std::vector<std::string>& label_values, double value);
  // Removes a series; no-op when it does not exist.
  void remove(const std::string& name, const std::vector<std::string>& label_values);

  // Every family in name order, series in label order; families without series are left out.
  [[nodiscard]] std::string render() const;

 private:
  struct Series {
    double value = 0;                 // counter, gauge
    std::vector<std::uint64_t> hits;  // histogram: per bucket, not cumulative; last is +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  struct Family {
    MetricType type = MetricType::counter;
    std::string help;
    std::vector<std::string> label_names;
    std::vector<double> bounds;
    std::map<std::vector<std::string>, Series> series;
  };

  void add(const std::string& name, Family family);
  Series& series(const std::string& name, MetricType type, const std::vector<std::string>& label_values);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
};

// The metrics pgconverge exposes on /metrics. Thread-safe.
class Metrics {
 public:
  Metrics();

  // One finished reconcile: pgconverge_reconcile_duration_seconds and pgconverge_reconcile_total,
  // labelled result (e.g. success, failure, no_change).
  void observe_reconcile(const std::string& result, double seconds);
  // pgconverge_last_applied_revision_info{revision, source} = 1, replacing the previous one.
  void set_revision(const std::string& revision, const std::string& source);
  // pgconverge_cluster_ready and pgconverge_cluster_sync_standbys_{desired,observed}.
  void set_cluster(const std::string& ns, const std::string& name, bool ready, int desired, int observed);
  // Drops a cluster's series (after it left the manifests).
  void remove_cluster(const std::string& ns, const std::string& name);
  // pgconverge_webhook_requests_total{receiver, status}.
  void count_webhook(const std::string& receiver, int status);
  // pgconverge_source_fetch_failures_total.
  void count_fetch_failure();
  // pgconverge_webhook_triggers_total{receiver, outcome}: what a verified webhook did to the
  // runs (queued, delayed, coalesced; webhook_triggers.hpp).
  void count_webhook_trigger(const std::string& receiver, const std::string& outcome);
  // pgconverge_http_connections_total{listener, outcome}: the HTTP server's own totals
  // (accepted, refused, evicted, head_timeout, request_timeout), copied in before a render.
  void set_http_connections(const std::string& listener, const std::string& outcome, double total);

  [[nodiscard]] std::string render() const { return registry_.render(); }
  // For families that are not pgconverge's own (tests, future additions).
  MetricsRegistry& registry() { return registry_; }

 private:
  MetricsRegistry registry_;
};

}  // namespace pgc::reconciler
