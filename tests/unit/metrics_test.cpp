// The metrics registry: exact text for small registries, escaping, cumulative buckets, and a
// strict reading of a full pgconverge render against the exposition format (plus promtool when
// it is installed).

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "reconciler/metrics.hpp"

using namespace pgc::reconciler;

namespace {

// Checks text against the Prometheus text format 0.0.4 and returns the first problem ("" when
// there is none): HELP and TYPE at most once per family and before its samples, a family's
// samples together, names, label names and escapes valid, values numbers, histogram buckets
// cumulative up to +Inf with _count equal to the +Inf bucket.
std::string exposition_problem(const std::string& text) {
  if (!text.empty() && text.back() != '\n') return "does not end with a newline";
  static const std::regex k_name("[a-zA-Z_:][a-zA-Z0-9_:]*");
  static const std::regex k_label_name("[a-zA-Z_][a-zA-Z0-9_]*");
  static const std::regex k_help("# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)");
  static const std::regex k_type("# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)");
  static const std::regex k_sample("([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(.*)\\})? (\\S+)");
  static const std::regex k_number("[+-]?(Inf|NaN|[0-9]+(\\.[0-9]*)?([eE][+-]?[0-9]+)?|\\.[0-9]+([eE][+-]?[0-9]+)?)");

  std::map<std::string, std::string> types;
  std::set<std::string> helped, finished;
  std::string current;  // the family whose samples are being read
  // Histogram state per series (labels without le).
  std::map<std::string, std::pair<double, bool>> buckets;  // last cumulative count, saw +Inf
  std::map<std::string, double> inf_count;

  std::istringstream in(text);
  std::string line;
  int number = 0;
  auto problem = [&](const std::string& what) { return "line " + std::to_string(number) + ": " + what + ": " + line; };
  while (std::getline(in, line)) {
    ++number;
    std::smatch m;
    if (line.starts_with("# HELP ")) {
      if (!std::regex_match(line, m, k_help)) return problem("bad HELP");
      auto help = m[2].str();
      for (std::size_t i = 0; i < help.size(); ++i) {
        if (help[i] == '\\' && (i + 1 == help.size() || (help[i + 1] != '\\' && help[i + 1] != 'n')))
          return problem("bad escape in HELP");
        if (help[i] == '\\') ++i;
      }
      if (!helped.insert(m[1]).second) return problem("second HELP");
      if (finished.contains(m[1]) || (current != m[1] && types.contains(m[1]))) return problem("HELP after samples");
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      if (!std::regex_match(line, m, k_type)) return problem("bad TYPE");
      if (types.contains(m[1])) return problem("second TYPE");
      if (finished.contains(m[1]) || current == m[1]) return problem("TYPE after samples");
      types[m[1]] = m[2];
      continue;
    }
    if (line.starts_with("#")) continue;  // a comment
    if (line.empty()) return problem("empty line");
    if (!std::regex_match(line, m, k_sample)) return problem("not a sample");
    auto name = m[1].str();
    if (!std::regex_match(m[4].str(), k_number)) return problem("bad value");
    // Labels: name="value" pairs, comma separated, escapes \\ \" \n only.
    std::map<std::string, std::string> labels;
    auto body = m[3].str();
    std::size_t i = 0;
    while (i < body.size()) {
      auto eq = body.find('=', i);
      if (eq == std::string::npos) return problem("label without =");
      auto label = body.substr(i, eq - i);
      if (!std::regex_match(label, k_label_name)) return problem("bad label name");
      if (eq + 1 >= body.size() || body[eq + 1] != '"') return problem("label value not quoted");
      std::string value;
      std::size_t j = eq + 2;
      for (; j < body.size() && body[j] != '"'; ++j) {
        if (body[j] == '\n') return problem("raw newline");
        if (body[j] == '\\') {
          if (j + 1 == body.size() || std::string("\\\"n").find(body[j + 1]) == std::string::npos)
            return problem("bad escape in label value");
          ++j;
        }
        value += body[j];
      }
      if (j == body.size()) return problem("unterminated label value");
      if (!labels.emplace(label, value).second) return problem("repeated label");
      i = j + 1;
      if (i < body.size()) {
        if (body[i] != ',') return problem("labels not separated by ,");
        ++i;
      }
    }
    // The family: the name itself, or a histogram's name before _bucket, _sum or _count.
    std::string family = name;
    std::string suffix;
    for (const char* s : {"_bucket", "_sum", "_count"}) {
      auto base = name.size() > std::strlen(s) ? name.substr(0, name.size() - std::strlen(s)) : "";
      if (name.ends_with(s) && types.contains(base) && types[base] == "histogram") {
        family = base;
        suffix = s;
      }
    }
    if (!types.contains(family)) return problem("sample without TYPE");
    if (types[family] == "histogram" && suffix.empty()) return problem("histogram sample without suffix");
    if (family != current) {
      if (finished.contains(family)) return problem("family split");
      if (!current.empty()) finished.insert(current);
      current = family;
    }
    if (types[family] == "counter" && std::stod(m[4]) < 0) return problem("negative counter");
    if (types[family] == "histogram") {
      std::string key = family;
      for (const auto& [k, v] : labels)
        if (k != "le") key += "|" + k + "=" + v;
      if (suffix == "_bucket") {
        if (!labels.contains("le") || !std::regex_match(labels["le"], k_number)) return problem("bucket without le");
        auto count = std::stod(m[4]);
        auto& [last, saw_inf] = buckets[key];
        if (saw_inf) return problem("bucket after +Inf");
        if (count < last) return problem("buckets not cumulative");
        last = count;
        if (labels["le"] == "+Inf") {
          saw_inf = true;
          inf_count[key] = count;
        }
      } else if (suffix == "_count") {
        if (!buckets[key].second) return problem("_count before the +Inf bucket");
        if (std::stod(m[4]) != inf_count[key]) return problem("_count differs from the +Inf bucket");
      }
    }
  }
  return "";
}

// A registry render with everything pgconverge sets.
std::string full_render() {
  Metrics metrics;
  metrics.observe_reconcile("success", 0.2);
  metrics.observe_reconcile("success", 42);
  metrics.observe_reconcile("failure", 4000);
  metrics.observe_reconcile("no_change", 1);
  metrics.set_revision("8f2c1e0", "git@example.com:ops/clusters.git");
  metrics.set_cluster("prod", "pg-main", true, 1, 1);
  metrics.set_cluster("prod", "pg-\"odd\"\\name\n", false, 2, 0);
  metrics.count_webhook("github", 202);
  metrics.count_webhook("github", 401);
  metrics.count_fetch_failure();
  return metrics.render();
}

}  // namespace

TEST_CASE("metrics: a small registry renders exactly") {
  MetricsRegistry registry;
  registry.add_counter("app_requests_total", "Requests handled.", {"code", "method"});
  registry.add_gauge("app_temperature", "Degrees.");
  registry.add_counter("app_unused_total", "Never set, so not rendered.", {"x"});
  registry.increment("app_requests_total", {"200", "GET"});
  registry.increment("app_requests_total", {"200", "GET"}, 2);
  registry.increment("app_requests_total", {"404", "GET"});
  registry.set("app_temperature", {}, -3.5);
  CHECK(registry.render() ==
        "# HELP app_requests_total Requests handled.\n"
        "# TYPE app_requests_total counter\n"
        "app_requests_total{code=\"200\",method=\"GET\"} 3\n"
        "app_requests_total{code=\"404\",method=\"GET\"} 1\n"
        "# HELP app_temperature Degrees.\n"
        "# TYPE app_temperature gauge\n"
        "app_temperature -3.5\n");
}

TEST_CASE("metrics: a family without labels is rendered at 0 from the start") {
  MetricsRegistry registry;
  registry.add_counter("app_errors_total", "Errors.");
  CHECK(registry.render() == "# HELP app_errors_total Errors.\n# TYPE app_errors_total counter\napp_errors_total 0\n");
}

TEST_CASE("metrics: label values and help text are escaped") {
  MetricsRegistry registry;
  registry.add_gauge("app_info", "Back\\slash and\nnewline \"quotes\" stay.", {"v"});
  registry.set("app_info", {"a\\b\"c\nd"}, 1);
  CHECK(registry.render() ==
        "# HELP app_info Back\\\\slash and\\nnewline \"quotes\" stay.\n"
        "# TYPE app_info gauge\n"
        "app_info{v=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST_CASE("metrics: histogram buckets are cumulative and end with +Inf") {
  MetricsRegistry registry;
  registry.add_histogram("app_seconds", "Durations.", {"kind"}, {0.5, 1, 2.5});
  registry.observe("app_seconds", {"x"}, 0.5);  // le is inclusive
  registry.observe("app_seconds", {"x"}, 0.7);
  registry.observe("app_seconds", {"x"}, 2);
  registry.observe("app_seconds", {"x"}, 100);
  CHECK(registry.render() ==
        "# HELP app_seconds Durations.\n"
        "# TYPE app_seconds histogram\n"
        "app_seconds_bucket{kind=\"x\",le=\"0.5\"} 1\n"
        "app_seconds_bucket{kind=\"x\",le=\"1\"} 2\n"
        "app_seconds_bucket{kind=\"x\",le=\"2.5\"} 3\n"
        "app_seconds_bucket{kind=\"x\",le=\"+Inf\"} 4\n"
        "app_seconds_sum{kind=\"x\"} 103.2\n"
        "app_seconds_count{kind=\"x\"} 4\n");
}

TEST_CASE("metrics: numbers are printed as Prometheus prints them") {
  MetricsRegistry registry;
  registry.add_gauge("g", "G.", {"k"});
  registry.set("g", {"a"}, 1000000);
  registry.set("g", {"b"}, 0.005);
  registry.set("g", {"c"}, 1e20);
  registry.set("g", {"d"}, std::numeric_limits<double>::infinity());
  registry.set("g", {"e"}, std::nan(""));
  CHECK(registry.render() ==
        "# HELP g G.\n# TYPE g gauge\n"
        "g{k=\"a\"} 1000000\ng{k=\"b\"} 0.005\ng{k=\"c\"} 1e+20\ng{k=\"d\"} +Inf\ng{k=\"e\"} NaN\n");
}

TEST_CASE("metrics: misuse is a programming error") {
  MetricsRegistry registry;
  registry.add_counter("c_total", "C.", {"a"});
  CHECK_THROWS_WITH(registry.add_gauge("c_total", "again"), "metrics: c_total declared twice");
  CHECK_THROWS_WITH(registry.add_gauge("9bad", "x"), "metrics: invalid metric name \"9bad\"");
  CHECK_THROWS_WITH(registry.add_gauge("ok", "x", {"__reserved"}), "metrics: ok: invalid label name \"__reserved\"");
  CHECK_THROWS_WITH(registry.add_histogram("h", "x", {"le"}, {1}), "metrics: h: invalid label name \"le\"");
  CHECK_THROWS_WITH(registry.add_histogram("h2", "x", {}, {2, 1}),
                    "metrics: h2: bucket bounds must be finite and strictly increasing");
  CHECK_THROWS_WITH(registry.increment("c_total", {}), "metrics: c_total takes 1 label values, not 0");
  CHECK_THROWS_WITH(registry.increment("c_total", {"x"}, -1), "metrics: c_total: a counter only goes up");
  CHECK_THROWS_WITH(registry.set("c_total", {"x"}, 1), "metrics: c_total is a counter");
  CHECK_THROWS_WITH(registry.set("nope", {}, 1), "metrics: nope was not declared");
}

TEST_CASE("metrics: pgconverge families, exact text") {
  Metrics metrics;
  metrics.observe_reconcile("success", 3);
  metrics.set_revision("abc123", "https://example.com/ops.git");
  metrics.set_cluster("prod", "pg-main", true, 1, 1);
  metrics.count_webhook("github", 202);
  CHECK(metrics.render() ==
        "# HELP pgconverge_cluster_ready Whether the cluster was observed converged and ready (1) or not (0).\n"
        "# TYPE pgconverge_cluster_ready gauge\n"
        "pgconverge_cluster_ready{namespace=\"prod\",cluster=\"pg-main\"} 1\n"
        "# HELP pgconverge_cluster_sync_standbys_desired Synchronous standbys the manifests ask for.\n"
        "# TYPE pgconverge_cluster_sync_standbys_desired gauge\n"
        "pgconverge_cluster_sync_standbys_desired{namespace=\"prod\",cluster=\"pg-main\"} 1\n"
        "# HELP pgconverge_cluster_sync_standbys_observed Synchronous standbys observed in Patroni.\n"
        "# TYPE pgconverge_cluster_sync_standbys_observed gauge\n"
        "pgconverge_cluster_sync_standbys_observed{namespace=\"prod\",cluster=\"pg-main\"} 1\n"
        "# HELP pgconverge_last_applied_revision_info The source revision last applied (value is always 1).\n"
        "# TYPE pgconverge_last_applied_revision_info gauge\n"
        "pgconverge_last_applied_revision_info{revision=\"abc123\",source=\"https://example.com/ops.git\"} 1\n"
        "# HELP pgconverge_reconcile_duration_seconds Duration of reconcile runs in seconds.\n"
        "# TYPE pgconverge_reconcile_duration_seconds histogram\n"
        "pgconverge_reconcile_duration_seconds_bucket{result=\"success\",le=\"0.5\"} 0\n"
        "pgconverge_reconcile_duration_seconds_bucket{result=\"success\",le=\"1\"} 0\n"
        "pgconverge_reconcile_duration_seconds_bucket{result=\"success\",le=\"2.5\"} 0\n"
        "pgconverge_reconcile_duration_seconds_bucket{result=\"success\",le=\"5\"} 1\n"
        "pgconverge_reconcile_duration_seconds_bucket{result=\"success\",le=\"10\"} 1\n"
        "pgconverge_reconcile_duration_seconds_bucket{result=\"success\",le=\"30\"} 1\n"
        "pgconverge_reconcile_duration_seconds_bucket{result=\"success\",le=\"60\"} 1\n"
        "pgconverge_reconcile_duration_seconds_bucket{result=\"success\",le=\"120\"} 1\n"
        "pgconverge_reconcile_duration_seconds_bucket{result=\"success\",le=\"300\"} 1\n"
        "pgconverge_reconcile_duration_seconds_bucket{result=\"success\",le=\"600\"} 1\n"
        "pgconverge_reconcile_duration_seconds_bucket{result=\"success\",le=\"1800\"} 1\n"
        "pgconverge_reconcile_duration_seconds_bucket{result=\"success\",le=\"+Inf\"} 1\n"
        "pgconverge_reconcile_duration_seconds_sum{result=\"success\"} 3\n"
        "pgconverge_reconcile_duration_seconds_count{result=\"success\"} 1\n"
        "# HELP pgconverge_reconcile_total Reconcile runs by result.\n"
        "# TYPE pgconverge_reconcile_total counter\n"
        "pgconverge_reconcile_total{result=\"success\"} 1\n"
        "# HELP pgconverge_source_fetch_failures_total Failed fetches of the manifest source.\n"
        "# TYPE pgconverge_source_fetch_failures_total counter\n"
        "pgconverge_source_fetch_failures_total 0\n"
        "# HELP pgconverge_webhook_requests_total Webhook requests by receiver and HTTP status.\n"
        "# TYPE pgconverge_webhook_requests_total counter\n"
        "pgconverge_webhook_requests_total{receiver=\"github\",status=\"202\"} 1\n");
}

TEST_CASE("metrics: a new revision replaces the old one, a removed cluster disappears") {
  Metrics metrics;
  metrics.set_revision("r1", "src");
  metrics.set_revision("r2", "src");
  metrics.set_cluster("a", "one", true, 0, 0);
  metrics.set_cluster("a", "two", false, 1, 0);
  metrics.remove_cluster("a", "one");
  metrics.remove_cluster("a", "never-there");
  auto text = metrics.render();
  CHECK(text.find("revision=\"r1\"") == std::string::npos);
  CHECK(text.find("pgconverge_last_applied_revision_info{revision=\"r2\",source=\"src\"} 1\n") != std::string::npos);
  CHECK(text.find("cluster=\"one\"") == std::string::npos);
  CHECK(text.find("pgconverge_cluster_ready{namespace=\"a\",cluster=\"two\"} 0\n") != std::string::npos);
  CHECK(text.find("pgconverge_cluster_sync_standbys_desired{namespace=\"a\",cluster=\"two\"} 1\n") != std::string::npos);
}

TEST_CASE("metrics: the strict reader refuses what Prometheus would refuse") {
  CHECK(exposition_problem("# TYPE a counter\na 1\n").empty());
  CHECK_FALSE(exposition_problem("a 1\n").empty());                                     // no TYPE
  CHECK_FALSE(exposition_problem("# TYPE a counter\n# TYPE a counter\na 1\n").empty());  // twice
  CHECK_FALSE(exposition_problem("# TYPE a counter\na{x=\"\\t\"} 1\n").empty());         // bad escape
  CHECK_FALSE(exposition_problem("# TYPE a counter\na one\n").empty());                  // value
  CHECK_FALSE(exposition_problem("# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na 2\n").empty());  // split
  CHECK_FALSE(exposition_problem("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
                                 "h_sum 1\nh_count 1\n").empty());  // not cumulative
  CHECK_FALSE(exposition_problem("# TYPE a counter\na 1").empty());  // no final newline
}

TEST_CASE("metrics: every line of a full pgconverge render follows the exposition format") {
  auto text = full_render();
  INFO(text);
  CHECK(exposition_problem(text).empty());
  CHECK(exposition_problem(text) == "");
  CHECK(text.find("cluster=\"pg-\\\"odd\\\"\\\\name\\n\"") != std::string::npos);
  CHECK(text.find("pgconverge_reconcile_duration_seconds_bucket{result=\"failure\",le=\"+Inf\"} 1\n") != std::string::npos);
  CHECK(text.find("pgconverge_reconcile_duration_seconds_bucket{result=\"failure\",le=\"1800\"} 0\n") != std::string::npos);
  CHECK(text.find("pgconverge_source_fetch_failures_total 1\n") != std::string::npos);
}

TEST_CASE("metrics: promtool check metrics accepts a full render (when promtool is installed)") {
  const char* promtool = "/usr/bin/promtool";
  if (!std::filesystem::exists(promtool)) {
    WARN("promtool not installed (Debian package prometheus): check skipped");
    return;
  }
  auto path = std::filesystem::temp_directory_path() / ("pgc-metrics-" + std::to_string(::getpid()) + ".txt");
  std::ofstream(path) << full_render();
  auto command = std::string(promtool) + " check metrics < " + path.string() + " 2>&1";
  std::string output;
  auto* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[512];
  while (auto n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  int status = ::pclose(pipe);
  std::filesystem::remove(path);
  INFO(output);
  CHECK(status == 0);
}
