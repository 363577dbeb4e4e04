#pragma once
// Fakes for the unit tests of whole runs (prepare, apply_run) without a lab, all behind the
// core's interfaces: a World whose hosts answer the host probe as bare Debian 12 machines (or
// not at all), whose Patroni and PostgreSQL do not answer (nothing runs there yet), and whose
// DCS holds nothing; a StepRunner that records the steps apply hands it and fails on cue; and a
// directory of manifests for clusters of two members on hosts h1..h4.

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "reconciler/step_runner.hpp"
#include "reconciler/world.hpp"
#include "tests/support/temp_dir.hpp"

namespace pgc::testing {

// A host that answers the probe as a reachable Debian 12 with apt and nothing installed (apt
// knows the packages of a PostgreSQL 15 member).
class BareHost final : public providers::RemoteHost {
 public:
  BareHost(std::string name, std::atomic<int>& probes) : name_(std::move(name)), probes_(probes) {}
  [[nodiscard]] std::string describe() const override { return name_; }
  Result<providers::CommandResult> run(const std::vector<std::string>&, std::chrono::milliseconds) override {
    return fail("host " + name_ + ": the fake runs no command");
  }
  Result<providers::CommandResult> run_script(const std::string&, const std::vector<std::string>&,
                                              std::chrono::milliseconds) override {
    ++probes_;
    return providers::CommandResult{0,
                                    "os debian- 12- - bookworm- Debian GNU/Linux 12 (bookworm)\npm 1 0 1\n"
                                    "cand postgresql-15 15.5-0+deb12u1\ncand postgresql-client-15 15.5-0+deb12u1\n"
                                    "cand patroni 3.0.2-1\ncand python3-etcd 0.4.5-4\nend\n",
                                    ""};
  }
  Result<providers::CommandResult> run_with_input(const std::vector<std::string>&, const std::string&,
                                                  std::chrono::milliseconds) override {
    return fail("host " + name_ + ": the fake runs no command");
  }
  Result<std::optional<std::string>> read_file(const std::string&) override { return std::nullopt; }
  Result<void> write_file(const std::string&, const std::string&, const providers::FileMode&) override {
    return fail("host " + name_ + ": the fake writes no file");
  }
  Result<void> make_directory(const std::string&, const providers::FileMode&, ExistingDirectory) override {
    return fail("host " + name_ + ": the fake makes no directory");
  }

 private:
  std::string name_;
  std::atomic<int>& probes_;
};

// Patroni that does not answer: nothing runs on the hosts yet.
class SilentPatroni final : public providers::PatroniClient {
 public:
  Result<nlohmann::json> cluster() override { return fail("connection refused"); }
  Result<nlohmann::json> patroni() override { return fail("connection refused"); }
  Result<nlohmann::json> config() override { return fail("connection refused"); }
  Result<nlohmann::json> patch_config(const nlohmann::json&) override { return fail("connection refused"); }
  Result<providers::HttpResponse> reload() override { return fail("connection refused"); }
  Result<providers::HttpResponse> restart(bool) override { return fail("connection refused"); }
  Result<providers::HttpResponse> switchover(const std::string&, const std::string&) override {
    return fail("connection refused");
  }
  Result<providers::HttpResponse> request(const std::string&, const std::string&,
                                          const std::optional<nlohmann::json>&) override {
    return fail("connection refused");
  }
};

// Nothing answers: no host connects, no Patroni, no PostgreSQL. A verification then observes
// every cluster as unreachable (not converged).
class SilentWorld : public reconciler::World {
 public:
  Result<std::unique_ptr<providers::RemoteHost>> connect(const manifests::Host&) override {
    return fail("no SSH in unit tests");
  }
  std::unique_ptr<providers::PatroniClient> patroni(const providers::PatroniEndpoint&) override {
    return std::make_unique<SilentPatroni>();
  }
  Result<providers::PgObservation> postgres(const providers::PgConnection&) override {
    return fail("connection refused");
  }
  Result<bool> dcs_has_any(const std::vector<std::string>&, const std::vector<std::string>&,
                                   const std::optional<pgc::providers::EtcdTls>&) override {
    return false;
  }
};

// Bare hosts (the ones named in unreachable refuse SSH), silent Patroni and PostgreSQL, an
// empty DCS. Counts connections and probes.
class BareWorld final : public SilentWorld {
 public:
  std::set<std::string> unreachable;
  std::atomic<int> connects{0};
  std::atomic<int> probes{0};

  Result<std::unique_ptr<providers::RemoteHost>> connect(const manifests::Host& host) override {
    ++connects;
    if (unreachable.contains(host.metadata.name)) return fail("host " + host.metadata.name + ": connection refused");
    return std::make_unique<BareHost>(host.metadata.name, probes);
  }
};

// What apply handed the runner, in order; the step whose subject contains fail_on fails.
struct StepLog {
  std::mutex mutex;
  std::vector<std::string> subjects;
  std::set<std::string> clusters;  // of the cluster changes run ("" for host changes)
  std::set<std::string> hosts;     // the hosts of the changes run
  std::string fail_on;             // empty: every step succeeds
  std::string fail_why;            // set: that failure is permanent, for this reason
  int plans = 0;                   // runners made: one per apply pass
};

class RecordingRunner final : public reconciler::StepRunner {
 public:
  explicit RecordingRunner(StepLog& log) : log_(log) {}
  Result<void> run(const reconciler::Change& change, const reconciler::Progress::Token&) override {
    std::lock_guard lock(log_.mutex);
    log_.subjects.push_back(change.subject);
    log_.clusters.insert(change.cluster);
    log_.hosts.insert(change.host);
    if (!log_.fail_on.empty() && change.subject.find(log_.fail_on) != std::string::npos)
      return std::unexpected(Error{"the fake step failed on cue", log_.fail_why});
    return {};
  }
  Result<void> check(const reconciler::Change&, const reconciler::Progress::Token&) override { return {}; }

 private:
  StepLog& log_;
};

inline reconciler::StepRunnerFactory recording_runner(StepLog& log) {
  return [&log](const reconciler::StepContext&) -> std::unique_ptr<reconciler::StepRunner> {
    std::lock_guard lock(log.mutex);
    ++log.plans;
    return std::make_unique<RecordingRunner>(log);
  };
}

// Manifests of clusters of two async members each, on hosts labelled for them (h1, h2 for the
// first cluster, h3, h4 for the second), with an external etcd.
class RunManifests : public test::TempDir {
 public:
  RunManifests() : test::TempDir("pgc-run") {
    write("etcd.yaml",
          "apiVersion: pgconverge.io/v1\nkind: EtcdCluster\nmetadata:\n  name: etcd\n"
          "spec:\n  endpoints: [\"10.0.0.2:2379\"]\n");
  }
  // A cluster and its two hosts; suspended: annotated with pause (pgconverge.io/suspend: "true"
  // unless said otherwise).
  void cluster(const std::string& name, int first_host, bool suspended = false,
               const std::string& pause = "pgconverge.io/suspend: \"true\"") {
    for (int i = first_host; i < first_host + 2; ++i) {
      std::string host = "h" + std::to_string(i);
      write(host + ".yaml", "apiVersion: pgconverge.io/v1\nkind: Host\nmetadata:\n  name: " + host +
                                "\n  labels:\n    pgconverge.io/cluster: " + name + "\nspec:\n  address: 10.0.0." +
                                std::to_string(10 + i) + "\n");
    }
    write(name + ".yaml", "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: " + name +
                              (suspended ? "\n  annotations:\n    " + pause : "") +
                              "\nspec:\n  postgres:\n    version: '15'\n  instances: 2\n"
                              "  replication:\n    mode: async\n");
  }
  // Replaces c.yaml by an SGCluster c that validation refuses at c.yaml:8 (instances: -1).
  void invalid_cluster_c() {
    write("c.yaml", "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: c\nspec:\n"
                    "  postgres:\n    version: '15'\n  instances: -1\n");
  }
};

}  // namespace pgc::testing
