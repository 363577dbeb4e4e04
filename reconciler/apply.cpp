#include "reconciler/apply.hpp"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>
#include <tuple>
#include <utility>
#include <thread>

#include "util/parallel.hpp"

#include "reconciler/converged.hpp"
#include "reconciler/etcd_apply.hpp"
#include "reconciler/host_prep.hpp"
#include "reconciler/redact.hpp"
#include "reconciler/rotation.hpp"
#include "reconciler/sidecars.hpp"
#include "reconciler/step_runner.hpp"
#include "util/json_pointer.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using providers::CommandResult;

constexpr auto k_command_timeout = std::chrono::seconds(60);
constexpr auto k_install_timeout = std::chrono::minutes(15);
constexpr auto k_poll = std::chrono::milliseconds(500);
constexpr auto k_member_gone_grace = std::chrono::seconds(10);
// How long a strict restart waits on replicas that have pending restarts of their own.
constexpr auto k_pending_replica_grace = std::chrono::seconds(15);
// How long a strict restart or stop waits for another replica to stream before the pass gives up.
constexpr std::chrono::seconds k_await_replica{45};
constexpr auto k_slow_call = std::chrono::milliseconds(60000);  // POST /restart, /switchover answer when done

const manifests::Host* find_host(const manifests::ManifestSet& manifests, const std::string& name) {
  for (const auto& h : manifests.hosts)
    if (h.metadata.name == name) return &h;
  return nullptr;
}

const DesiredCluster* find_cluster(const DesiredState& desired, const std::string& name) {
  for (const auto& c : desired.clusters)
    if (c.name == name) return &c;
  return nullptr;
}

const DesiredMember* find_member(const DesiredCluster& cluster, const std::string& name) {
  for (const auto& m : cluster.members)
    if (m.name == name) return &m;
  return nullptr;
}

std::vector<std::string> member_addresses(const DesiredCluster& cluster) {
  std::vector<std::string> out;
  for (const auto& m : cluster.members) out.push_back(m.address);
  return out;
}

// Runs argv on a host; a non-zero exit is an error naming host, step and stderr.
Result<CommandResult> run_checked(providers::RemoteHost& host, const std::vector<std::string>& argv,
                                  std::chrono::milliseconds timeout) {
  auto result = host.run(argv, timeout);
  if (!result) return std::unexpected(result.error());
  if (result->exit_status != 0)
    return fail("host " + host.describe() + ": `" + join(argv, " ") + "` exited with status " +
                std::to_string(result->exit_status) + ": " + trim(result->err).substr(0, 300));
  return result;
}

Result<void> as_void(const Result<CommandResult>& r) {
  if (!r) return std::unexpected(r.error());
  return {};
}

constexpr const char* k_stopping = "stopped: pgconverge is shutting down";
bool stopping(const std::atomic<bool>* stop) { return stop && stop->load(); }

// The wait tally of the cluster this thread applies (apply() runs each cluster on one thread
// and sets it for the cluster's steps), or none.
thread_local WaitTally* t_tally = nullptr;

class ScopedTally {
 public:
  explicit ScopedTally(WaitTally* tally) : previous_(t_tally) { t_tally = tally; }
  ~ScopedTally() { t_tally = previous_; }
  ScopedTally(const ScopedTally&) = delete;
  ScopedTally& operator=(const ScopedTally&) = delete;

 private:
  WaitTally* previous_;
};

// One observation of a wait: its time counts as waiting when Patroni had not acted yet.
template <typename Observe>
auto tallied_observation(WaitTally* tally, Observe&& observe) {
  auto start = std::chrono::steady_clock::now();
  auto [observed, done] = observe();
  if (tally) {
    ++tally->observations;
    if (!done) tally->waited += std::chrono::steady_clock::now() - start;
  }
  return std::pair{std::move(observed), done};
}

void tallied_pause(WaitTally* tally) {
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(k_poll);
  if (tally) tally->waited += std::chrono::steady_clock::now() - start;
}

// Polls observe_cluster until ready(observed) or the deadline; returns the last observation.
template <typename Ready>
Result<ObservedCluster> wait_for(const std::atomic<bool>* stop, const DesiredCluster& cluster, const ClusterSecrets& secrets, World& world,
                                 std::chrono::seconds timeout, const std::string& what, bool with_postgres,
                                 Progress& progress, const Progress::Token& token, Ready ready) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  ObservedCluster last;
  while (true) {
    bool done = false;
    std::tie(last, done) = tallied_observation(t_tally, [&] {
      auto observed = observe_cluster(cluster, member_addresses(cluster), &secrets, world, with_postgres, 4);
      bool is_ready = ready(observed);
      return std::pair{std::move(observed), is_ready};
    });
    if (done) return last;
    if (std::chrono::steady_clock::now() >= deadline)
      return fail("timed out after " + std::to_string(timeout.count()) + "s waiting for " + what);
    if (stopping(stop)) return fail(std::string(k_stopping) + " while waiting for " + what);
    progress.update(token, "waiting for " + what);
    tallied_pause(t_tally);
  }
}

class HostStepRunner final : public StepRunner {
 public:
  explicit HostStepRunner(const StepContext& context)
      : manifests_(context.manifests), desired_(context.desired), secrets_(context.secrets), world_(context.world),
        sessions_(context.sessions), progress_(context.progress), options_(context.options) {}

  Result<void> check(const Change& change, const Progress::Token&) override {
    const auto* install = std::get_if<steps::InstallPackages>(&change.step);
    if (!install) return fail("internal: " + to_string(change.step) + " has no dry run");
    return check_packages(change, *install);
  }

  Result<void> run(const Change& change, const Progress::Token& token) override { return dispatch(change, token); }

 private:
  Result<providers::RemoteHost*> session(const std::string& host_name) {
    const auto* host = find_host(manifests_, host_name);
    if (!host) return fail("host " + host_name + " is not declared");
    return sessions_.get(*host);
  }

  Result<void> dispatch(const Change& change, const Progress::Token& token) {
    auto await = std::visit(
        [](const auto& s) -> steps::AwaitStreamingExcept {
          if constexpr (requires { s.await_streaming_except; }) return s.await_streaming_except;
          else return std::nullopt;
        },
        change.step);
    if (await) {
      // Strict mode: this restart or stop relies on another replica streaming (replication
      // semantics §5.1); one is coming back (its host answers, its service runs): wait for it.
      // One that itself waits for a restart this plan does not hold (back from an outage with the
      // old settings, it may not stream at all: a standby with a lower max_connections than its
      // primary cannot) will not come by waiting: after a grace period the step fails, and the
      // next pass plans its restart first.
      const auto& except = *await;
      const auto& c = cluster(change);
      auto is_except = [&](const std::string& name) { return std::find(except.begin(), except.end(), name) != except.end(); };
      auto stuck_since = std::chrono::steady_clock::time_point::max();
      bool stuck = false;
      // Bounded well below --wait-timeout: a replica coming back streams within seconds; when
      // none does, a fresh observation (the next pass) sees why sooner than waiting on.
      auto other = wait_for(options_.stop, c, secrets(c.name), world_, std::min(options_.wait_timeout, k_await_replica),
                            "another replica to stream (strict mode keeps a sync standby)", false, progress_, token,
                            [&](const ObservedCluster& oc) {
                              for (const auto& name : oc.streaming_replicas())
                                if (!is_except(name)) return true;
                              bool only_pending = true, any = false;
                              for (const auto& m : c.members) {
                                if (is_except(m.name)) continue;
                                const auto* om = oc.member(m.name);
                                if (!om || om->role == "leader") continue;
                                any = true;
                                only_pending = only_pending && om->pending_restart;
                              }
                              auto now = std::chrono::steady_clock::now();
                              if (!(any && only_pending)) stuck_since = std::chrono::steady_clock::time_point::max();
                              else if (stuck_since == std::chrono::steady_clock::time_point::max()) stuck_since = now;
                              stuck = any && only_pending && now - stuck_since >= k_pending_replica_grace;
                              return stuck;
                            });
      if (!other) return std::unexpected(other.error());
      if (stuck)
        return fail("no other replica streams, and the ones there wait for a restart themselves: a new plan restarts "
                    "them first");
    }
    auto etcd = [&](const auto&) { return execute_etcd_step(change, manifests_, sessions_, progress_, token, options_); };
    return std::visit(
        Overloaded{
            [&](const steps::ConfigureRepository& s) { return configure_repository(change, s); },
            [&](const steps::InstallPackages& s) { return install_packages(change, s); },
            [&](const steps::StopDebianCluster& s) { return stop_debian_cluster(change, s); },
            [&](const steps::WriteConfig&) { return write_config(change); },
            [&](const steps::ReloadMember&) { return systemctl(change.host, {"reload", member(change).service}); },
            [&](const steps::StartMember& s) { return start_member(change, s, token); },
            [&](const steps::PatchDcs& s) { return patch_dcs(change, s, token); },
            [&](const steps::RestartMember&) { return restart_member(change, token); },
            [&](const steps::Switchover& s) { return switchover(change, s, token); },
            [&](const steps::StopMember& s) { return stop_member(change, s); },
            [&](const steps::WriteFile& s) { return write_file(change, s); },
            [&](const steps::Service& s) { return service(change, s); },
            [&](const steps::EnsureRoles&) { return roles(change, token); },
            [&](const steps::RotateSecrets& s) { return rotate(change, s, token); },
            [&](const steps::EtcdWriteConfig& s) { return etcd(s); },
            [&](const steps::EtcdStart& s) { return etcd(s); },
            [&](const steps::EtcdRestart& s) { return etcd(s); },
            [&](const steps::EtcdMemberAdd& s) { return etcd(s); },
            [&](const steps::EtcdMemberRemove& s) { return etcd(s); },
            [&](const steps::EtcdStop& s) { return etcd(s); },
        },
        change.step);
  }

  const DesiredCluster& cluster(const Change& change) {
    const auto* c = find_cluster(desired_, change.cluster);
    if (!c) throw FatalError("internal: plan names unknown cluster " + change.cluster);
    return *c;
  }
  const DesiredMember& member(const Change& change) {
    const auto* m = find_member(cluster(change), change.member);
    if (!m) throw FatalError("internal: plan names unknown member " + change.member);
    return *m;
  }
  const ClusterSecrets& secrets(const std::string& cluster_name) { return secrets_.at(cluster_name); }

  Result<void> systemctl(const std::string& host_name, std::vector<std::string> args) {
    auto s = session(host_name);
    if (!s) return std::unexpected(s.error());
    args.insert(args.begin(), "systemctl");
    return as_void(run_checked(**s, args, k_command_timeout));
  }

  // A failed package-manager command, in its own words: apt's "E:" lines, else the end of stderr.
  static std::string package_manager_error(const std::string& host, const std::string& what,
                                           const providers::CommandResult& r) {
    std::vector<std::string> errors;
    for (const auto& line : split(r.err + "\n" + r.out, '\n'))
      if (line.starts_with("E: ") || line.starts_with("pgconverge: ")) errors.push_back(trim(line));
    std::string text = errors.empty() ? trim(r.err) : join(errors, "; ");
    if (text.size() > 600) text = "…" + text.substr(text.size() - 600);
    return "host " + host + ": " + what + " exited with status " + std::to_string(r.exit_status) + ": " + text;
  }

  Result<void> configure_repository(const Change& change, const steps::ConfigureRepository& step) {
    auto s = session(change.host);
    if (!s) return std::unexpected(s.error());
    if (step.repository != manifests::k_repository_pgdg)
      return fail("host " + (*s)->describe() + ": unknown package repository");
    // postgresql-common (in Debian and Ubuntu themselves) ships the PGDG key and the script that
    // writes apt.postgresql.org's sources entry for this release, then runs apt-get update.
    static const std::string script = R"SH(
set -eu
export DEBIAN_FRONTEND=noninteractive
apt_opts="-y -q -o DPkg::Lock::Timeout=300"
if ! dpkg-query -W -f='${Status}' postgresql-common 2>/dev/null | grep -q 'ok installed'; then
  apt-get $apt_opts update
  apt-get $apt_opts install --no-install-recommends postgresql-common
fi
/usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y
)SH";
    auto r = (*s)->run_script(script, {}, k_install_timeout);
    if (!r) return std::unexpected(r.error());
    if (r->exit_status != 0) return fail(package_manager_error((*s)->describe(), "adding the pgdg repository", *r));
    return {};
  }

  // Before anything is installed anywhere: apt-get update where planned, then a simulated
  // install (apt resolves every package and dependency, changes nothing). A package no source
  // has fails here, in apt's own words, on every host at once.
  Result<void> check_packages(const Change& change, const steps::InstallPackages& step) {
    auto s = session(change.host);
    if (!s) return std::unexpected(s.error());
    static const std::string script = R"SH(
set -eu
export DEBIAN_FRONTEND=noninteractive
update=$1; shift
if [ "$update" = 1 ]; then apt-get -q -o DPkg::Lock::Timeout=300 update; fi
apt-get -s -q -o DPkg::Lock::Timeout=300 install --no-install-recommends "$@" >/dev/null
)SH";
    return run_apt(**s, script, step);
  }

  // Runs an apt script with the change's package arguments; a failure in apt's own words.
  static Result<void> run_apt(providers::RemoteHost& host, const std::string& script, const steps::InstallPackages& step) {
    auto args = package_args(step);
    auto r = host.run_script(script, args, k_install_timeout);
    if (!r) return std::unexpected(r.error());
    if (r->exit_status != 0)
      return fail(package_manager_error(host.describe(),
                                        "apt-get install " + join(std::vector<std::string>(args.begin() + 1, args.end()), " "), *r));
    return {};
  }

  Result<void> install_packages(const Change& change, const steps::InstallPackages& step) {
    auto s = session(change.host);
    if (!s) return std::unexpected(s.error());
    // Installing postgresql-NN would create and start a cluster "main" on port 5432, clashing with
    // Patroni's: tell postgresql-common not to (createcluster.conf is read by the package scripts).
    static const std::string script = R"SH(
set -eu
export DEBIAN_FRONTEND=noninteractive
shift
f=/etc/postgresql-common/createcluster.conf
install -d /etc/postgresql-common
grep -qE '^[[:space:]]*create_main_cluster[[:space:]]*=[[:space:]]*false' "$f" 2>/dev/null || echo 'create_main_cluster = false' >> "$f"
apt-get -y -q -o DPkg::Lock::Timeout=300 install --no-install-recommends "$@"
)SH";
    return run_apt(**s, script, step);
  }

  static std::vector<std::string> package_args(const steps::InstallPackages& step) {
    std::vector<std::string> args{step.update ? "1" : "0"};
    args.insert(args.end(), step.packages.begin(), step.packages.end());
    return args;
  }

  Result<void> stop_debian_cluster(const Change& change, const steps::StopDebianCluster& step) {
    auto s = session(change.host);
    if (!s) return std::unexpected(s.error());
    const std::string& version = step.version;
    const std::string& name = step.cluster;
    // Stop it (pg_ctlcluster hands over to systemctl where systemd started it), then keep it from
    // starting again; its data directory stays as it is.
    static const std::string script = R"SH(
set -eu
v=$1; c=$2
if pg_ctlcluster "$v" "$c" status >/dev/null 2>&1; then pg_ctlcluster "$v" "$c" stop -m fast; fi
systemctl disable "postgresql@$v-$c" >/dev/null 2>&1 || true
)SH";
    auto r = (*s)->run_script(script, {version, name}, k_command_timeout);
    if (!r) return std::unexpected(r.error());
    if (r->exit_status != 0)
      return fail("host " + (*s)->describe() + ": stopping Debian's cluster " + version + "/" + name + ": " + trim(r->err));
    return (*s)->write_file("/etc/postgresql/" + version + "/" + name + "/start.conf",
                            "# pgconverge: disabled so that Patroni alone runs PostgreSQL on this host.\n"
                            "# The cluster's data directory is kept as it was.\n"
                            "disabled\n",
                            providers::FileMode{"postgres", "postgres", 0644});
  }

  Result<void> write_config(const Change& change) {
    const auto& m = member(change);
    auto s = session(change.host);
    if (!s) return std::unexpected(s.error());
    std::string data_dir = m.patroni_config["postgresql"].value("data_dir", "");
    std::string parent = std::filesystem::path(data_dir).parent_path().string();
    std::string config_dir = std::filesystem::path(m.config_path).parent_path().string();
    // Directories Patroni needs; the socket dir is what systemd-tmpfiles makes on a real VM. An
    // existing one must already belong to its owner: it is never re-owned.
    using Existing = providers::RemoteHost::ExistingDirectory;
    const std::pair<std::string, providers::FileMode> dirs[] = {
        {config_dir, {"root", "postgres", 0750}},
        {parent, {"postgres", "postgres", 0700}},
        {"/var/run/postgresql", {"postgres", "postgres", 02775}},
    };
    for (const auto& [dir, mode] : dirs)
      if (auto made = (*s)->make_directory(dir, mode, Existing::owned); !made)
        return fail(made.error().message + " (step: preparing Patroni's directories)");
    return (*s)->write_file(m.config_path, config_text(m, secrets(change.cluster)),
                            providers::FileMode{"root", "postgres", 0640});
  }

  Result<void> start_member(const Change& change, const steps::StartMember& step, const Progress::Token& token) {
    const auto& m = member(change);
    if (step.enable)
      if (auto r = systemctl(change.host, {"enable", m.service}); !r) return r;
    if (auto r = systemctl(change.host, {"start", m.service}); !r) return r;
    using steps::StartWait;
    const StartWait wait = step.wait;
    if (wait == StartWait::none) return {};  // a later start waits for it (replicas joining together)
    std::vector<std::string> names{m.name};
    if (!step.wait_members.empty()) names = step.wait_members;
    const auto& c = cluster(change);
    auto member_ready = [&](const ObservedCluster& oc, const std::string& name) {
      const auto* om = oc.member(name);
      if (!om) return false;
      if (wait == StartWait::leader) return om->role == "leader" && om->state == "running";
      if (wait == StartWait::streaming)
        return (om->role == "replica" || om->role == "sync_standby") &&
               (om->state == "running" || om->state == "streaming");
      return om->state == "running" || om->state == "streaming";
    };
    auto ready = [&](const ObservedCluster& oc) {
      return std::all_of(names.begin(), names.end(), [&](const std::string& n) { return member_ready(oc, n); });
    };
    auto r = wait_for(options_.stop, c, secrets(c.name), world_, options_.wait_timeout, join(names, ", ") + " " + to_string(wait),
                      false, progress_, token, ready);
    if (!r) return std::unexpected(r.error());
    return {};
  }

  // PATCH /config and POST /switchover work on any member (Patroni writes them to the DCS). Asks
  // the leader first, then every other member, so that a leader lost mid-apply (fault 4) does not
  // fail the step: the cluster is observed afresh for each call. Stops at the first answer.
  template <typename Call>
  auto on_any_member(const DesiredCluster& c, Call call, bool slow = false)
      -> decltype(call(std::declval<providers::PatroniClient&>())) {
    auto oc = observe_cluster(c, member_addresses(c), &secrets(c.name), world_, false, 4);
    if (!oc.api_reachable)
      return fail("cluster " + c.name + ": Patroni REST API not reachable: " +
                  (oc.dcs_error.empty() ? oc.error : oc.dcs_error));
    std::vector<std::string> order;
    if (const auto* leader = oc.leader(); leader && !leader->host.empty()) order.push_back(leader->host);
    for (const auto& address : member_addresses(c))
      if (std::find(order.begin(), order.end(), address) == order.end()) order.push_back(address);
    decltype(call(std::declval<providers::PatroniClient&>())) result = fail("cluster " + c.name + ": no member to ask");
    for (const auto& address : order) {
      auto endpoint = patroni_endpoint(address, &secrets(c.name));
      if (slow) endpoint.timeout = std::min<std::chrono::milliseconds>(options_.wait_timeout, k_slow_call);
      auto client = world_.patroni(endpoint);
      result = call(*client);
      if (result) break;
    }
    return result;
  }

  Result<void> patch_dcs(const Change& change, const steps::PatchDcs& step, const Progress::Token& token) {
    const auto& c = cluster(change);
    const auto& sec = secrets(c.name);
    const json& patch = step.patch;
    bool wants_strict = patch.value("synchronous_mode_strict", false);
    if (wants_strict) {
      // Enabling strict with no streaming replica blocks every write (§5.4): wait for one.
      auto streams = wait_for(options_.stop, c, sec, world_, options_.wait_timeout, "a streaming replica before enabling strict mode",
                              false, progress_, token,
                              [](const ObservedCluster& oc) { return !oc.streaming_replicas().empty(); });
      if (!streams) return std::unexpected(streams.error());
    }
    auto patch_config = [&](const json& body) {
      return on_any_member(c, [&](providers::PatroniClient& client) { return client.patch_config(body); });
    };
    // The standby names a release waits to see cleared: '*' (§5.5) or stale names (plan.cpp).
    std::vector<std::string> held = {"*"};
    bool release = step.release_first;
    if (release && !step.release_stale.empty()) {
      // Stale names are released only while still stale: a named standby that streams again since
      // the plan is Patroni's to handle, and turning synchronous_mode off then would be a gap.
      auto now = wait_for(options_.stop, c, sec, world_, options_.wait_timeout, "the leader's standby names", true, progress_,
                          token, [](const ObservedCluster&) { return true; });
      if (!now) return std::unexpected(now.error());
      held = now->stale_standby_names();
      release = !held.empty();
    }
    if (release) {
      // Patroni 3.0.2 only clears such names when synchronous_mode goes off (§5.5).
      auto r = patch_config({{"synchronous_mode", false}, {"synchronous_mode_strict", false}});
      if (!r) return std::unexpected(r.error());
      auto released = wait_for(options_.stop, c, sec, world_, options_.wait_timeout,
                               "synchronous_standby_names to leave " + join(held, ", "), true, progress_, token,
                               [&](const ObservedCluster& oc) {
                                 const auto* l = oc.leader();
                                 if (!l || !oc.postgres.contains(l->name)) return false;
                                 auto names = standby_names(oc.postgres.at(l->name).synchronous_standby_names);
                                 return std::none_of(held.begin(), held.end(), [&](const auto& n) {
                                   return std::find(names.begin(), names.end(), n) != names.end();
                                 });
                               });
      if (!released) return std::unexpected(released.error());
    }
    auto r = patch_config(patch);
    if (!r) return std::unexpected(r.error());
    // A 200 is not proof (§5.6): read the configuration back until every patched key holds.
    std::map<std::string, json> keys;
    std::function<void(const json&, const std::string&)> flat = [&](const json& v, const std::string& p) {
      if (v.is_object() && !v.empty()) {
        for (auto it = v.begin(); it != v.end(); ++it) flat(it.value(), pointer_append(p, it.key()));
      } else {
        keys[p] = v;
      }
    };
    flat(patch, "");
    auto stored = wait_for(options_.stop, c, sec, world_, std::min(options_.wait_timeout, std::chrono::seconds(30)),
                           "Patroni to store the configuration", false, progress_, token, [&](const ObservedCluster& oc) {
                             for (const auto& [p, v] : keys) {
                               json::json_pointer ptr(p);
                               if (!oc.dcs_config.contains(ptr) || !same_setting(oc.dcs_config.at(ptr), v)) return false;
                             }
                             return true;
                           });
    if (!stored) return fail("Patroni answered the PATCH but did not store it (" + stored.error().message + ")");
    // PostgreSQL parameters take effect in Patroni's next loop; only then does a parameter that
    // needs a restart show as a pending restart. The verification waits one loop (+1 s) first.
    if (patch.contains("postgresql") && t_tally) {
      auto loop_wait = std::chrono::seconds(c.dynamic_config.value("loop_wait", 10));
      t_tally->settle_until = std::chrono::steady_clock::now() + loop_wait + std::chrono::seconds(1);
    }
    return {};
  }

  Result<void> restart_member(const Change& change, const Progress::Token& token) {
    const auto& c = cluster(change);
    const auto& m = member(change);
    // POST /restart answers once PostgreSQL is back: allow it the step's time, not a probe's.
    auto endpoint = patroni_endpoint(m.address, &secrets(c.name));
    endpoint.timeout = std::min<std::chrono::milliseconds>(options_.wait_timeout, k_slow_call);
    auto client = world_.patroni(endpoint);
    auto r = client->restart(true);
    if (!r) return std::unexpected(r.error());
    if (r->status != 200 && r->status != 503)
      return fail("POST /restart on " + m.name + " answered " + std::to_string(r->status) + ": " + r->body.substr(0, 200));
    auto done = wait_for(options_.stop, c, secrets(c.name), world_, options_.wait_timeout, m.name + " to restart", false, progress_,
                         token, [&](const ObservedCluster& oc) {
                           const auto* om = oc.member(m.name);
                           return om && !om->pending_restart && (om->state == "running" || om->state == "streaming");
                         });
    if (!done) return std::unexpected(done.error());
    return {};
  }

  Result<void> switchover(const Change& change, const steps::Switchover& step, const Progress::Token& token) {
    const auto& c = cluster(change);
    const std::string& leader = step.leader;
    std::string candidate = step.candidate;
    // In sync mode the candidate must be a sync standby (§5.8). Which replica Patroni holds as
    // sync may have changed since the plan (a restart in between moves it): take the planned one
    // if it is sync, else any declared failover-capable sync standby — one without a pending
    // restart first (a member back from an outage may have one: leading, it would need another
    // switchover).
    if (c.dynamic_config.value("synchronous_mode", false)) {
      std::string chosen;
      auto ok = wait_for(options_.stop, c, secrets(c.name), world_, options_.wait_timeout,
                         "a sync standby to switch over to", false, progress_, token, [&](const ObservedCluster& oc) {
                           auto syncs = oc.sync_standbys();
                           auto pending = [&](const std::string& name) {
                             const auto* om = oc.member(name);
                             return om && om->pending_restart;
                           };
                           auto eligible = [&](const std::string& name) {
                             const auto* m = find_member(c, name);
                             return m && !m->tags.nofailover && name != leader;
                           };
                           for (bool allow_pending : {false, true}) {
                             if (std::find(syncs.begin(), syncs.end(), candidate) != syncs.end() &&
                                 (allow_pending || !pending(candidate))) {
                               chosen = candidate;
                               return true;
                             }
                             for (const auto& name : syncs)
                               if (eligible(name) && (allow_pending || !pending(name))) {
                                 chosen = name;
                                 return true;
                               }
                           }
                           return false;
                         });
      if (!ok) return std::unexpected(ok.error());
      candidate = chosen;
    }
    auto r = on_any_member(c, [&](providers::PatroniClient& client) {
      return client.switchover(leader, candidate);
    }, true);
    if (!r) return std::unexpected(r.error());
    if (r->status != 200 && r->status != 202)
      return fail("POST /switchover " + leader + " → " + candidate + " answered " + std::to_string(r->status) + ": " +
                  trim(r->body).substr(0, 200));
    auto done = wait_for(options_.stop, c, secrets(c.name), world_, options_.wait_timeout, candidate + " to lead", false, progress_,
                         token, [&](const ObservedCluster& oc) {
                           const auto* l = oc.leader();
                           return l && l->name == candidate && l->state == "running";
                         });
    if (!done) return std::unexpected(done.error());
    return {};
  }

  Result<void> stop_member(const Change& change, const steps::StopMember& step) {
    const std::string& service = step.service;
    if (auto r = systemctl(change.host, {"stop", service}); !r) return r;
    return systemctl(change.host, {"disable", service});
  }

  // A managed file of a member (PgBouncer's, the exporter's).
  Result<void> write_file(const Change& change, const steps::WriteFile& step) {
    const auto& m = member(change);
    const std::string& path = step.path;
    auto file = std::find_if(m.files.begin(), m.files.end(), [&](const ManagedFile& f) { return f.path == path; });
    if (file == m.files.end()) throw FatalError("internal: plan names unknown file " + path + " of " + m.name);
    auto s = session(change.host);
    if (!s) return std::unexpected(s.error());
    return write_managed_file(**s, *file, secrets(change.cluster));
  }

  // start / restart / reload / enable / stop of a sidecar's unit; a start or restart is verified
  // by asking systemd whether the unit is active.
  Result<void> service(const Change& change, const steps::Service& step) {
    using steps::ServiceAction;
    const std::string& unit = step.unit;
    const ServiceAction action = step.action;
    if (action == ServiceAction::stop) {
      if (auto r = systemctl(change.host, {"stop", unit}); !r) return r;
      return systemctl(change.host, {"disable", unit});
    }
    if (step.enable || action == ServiceAction::enable)
      if (auto r = systemctl(change.host, {"enable", unit}); !r) return r;
    if (action == ServiceAction::enable) return {};
    if (action == ServiceAction::reload) return systemctl(change.host, {"reload", unit});
    if (auto r = systemctl(change.host, {to_string(action), unit}); !r) return r;
    return systemctl(change.host, {"is-active", "--quiet", unit});
  }

  // The leader's host session, once a leader runs.
  Result<providers::RemoteHost*> leader_session(const DesiredCluster& c, const std::string& what,
                                                const Progress::Token& token) {
    auto led = wait_for(options_.stop, c, secrets(c.name), world_, options_.wait_timeout, what, false, progress_, token,
                        [](const ObservedCluster& oc) {
                          const auto* l = oc.leader();
                          return l && l->state == "running";
                        });
    if (!led) return std::unexpected(led.error());
    const auto* m = find_member(c, led->leader()->name);
    if (!m) return fail("cluster " + c.name + ": leader " + led->leader()->name + " is not a declared member");
    return session(m->host);
  }

  // Roles on the leader (PostgreSQL's roles are cluster-wide; replicas get them by replication).
  Result<void> roles(const Change& change, const Progress::Token& token) {
    const auto& c = cluster(change);
    auto s = leader_session(c, "a leader to create roles on", token);
    if (!s) return std::unexpected(s.error());
    return ensure_roles(**s, c.roles, secrets(c.name));
  }

  // A rotation: the roles' new passwords on the leader, then saved, before any config has them.
  Result<void> rotate(const Change& change, const steps::RotateSecrets& step, const Progress::Token& token) {
    const auto& c = cluster(change);
    auto roles = rotation_roles(c, step.kinds);
    if (!roles.empty()) {
      auto s = leader_session(c, "a leader to set the new passwords on", token);
      if (!s) return std::unexpected(s.error());
      if (auto r = ensure_roles(**s, roles, secrets(c.name)); !r) return r;
    }
    if (options_.secrets_rotated) return options_.secrets_rotated(c.name);
    return {};
  }

  const manifests::ManifestSet& manifests_;
  const DesiredState& desired_;
  const std::map<std::string, ClusterSecrets>& secrets_;
  World& world_;
  Sessions& sessions_;
  Progress& progress_;
  const ApplyOptions& options_;
};

}  // namespace

std::unique_ptr<StepRunner> make_host_step_runner(const StepContext& context) {
  return std::make_unique<HostStepRunner>(context);
}

bool ApplyReport::ok() const {
  if (!host_errors.empty()) return false;
  return std::all_of(clusters.begin(), clusters.end(),
                     [](const ClusterOutcome& c) { return c.converged && c.errors.empty(); });
}

std::size_t ApplyReport::applied() const {
  std::size_t n = host_changes_applied;
  for (const auto& c : clusters) n += c.applied;
  return n;
}

std::vector<std::string> wait_converged(const DesiredCluster& cluster, const ClusterSecrets& secrets, World& world,
                                        std::chrono::seconds timeout, std::size_t workers, Progress* progress,
                                        ObservedCluster* last, const std::atomic<bool>* stop, WaitTally* tally) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::optional<Progress::Token> token;
  if (progress) token = progress->begin(cluster.name, "verify");
  std::vector<std::string> diffs;
  // A declared member that left Patroni or stopped (its service was stopped, its host lost) will
  // not come back by waiting: after a grace period the wait ends, and the caller may re-plan.
  auto member_gone_since = std::chrono::steady_clock::time_point::max();  // max: none gone
  while (true) {
    auto [oc, done] = tallied_observation(tally, [&] {
      auto observed = observe_cluster(cluster, member_addresses(cluster), &secrets, world, true, workers);
      diffs = differences(cluster, observed);
      bool settled = !tally || std::chrono::steady_clock::now() >= tally->settle_until;
      return std::pair{std::move(observed), diffs.empty() && settled};
    });
    if (last) *last = oc;
    auto now = std::chrono::steady_clock::now();
    bool gone = oc.api_reachable && std::any_of(cluster.members.begin(), cluster.members.end(), [&](const auto& m) {
      const auto* om = oc.member(m.name);
      return !om || om->state == "stopped" || om->state == "crashed" || om->state == "start failed";
    });
    // Likewise pending restarts that this apply did not plan (a member back from an outage with
    // an old configuration): only a new plan restarts them.
    bool only_pending = !diffs.empty() && std::all_of(diffs.begin(), diffs.end(), [](const std::string& d) {
      return d.ends_with(" has a pending restart");
    });
    if (!gone && !only_pending) member_gone_since = std::chrono::steady_clock::time_point::max();
    else if (member_gone_since == std::chrono::steady_clock::time_point::max()) member_gone_since = now;
    bool stuck = (gone || only_pending) && now - member_gone_since >= k_member_gone_grace;
    bool settled = !tally || now >= tally->settle_until;
    if ((diffs.empty() && settled) || now >= deadline || stuck || stopping(stop)) break;
    if (progress) progress->update(*token, diffs.empty() ? "waiting for Patroni's loop to apply the parameters" : diffs.front());
    tallied_pause(tally);
  }
  if (progress) progress->finish(*token, diffs.empty() ? "converged" : "not converged: " + diffs.front());
  return diffs;
}

ApplyReport apply(const Plan& plan, const manifests::ManifestSet& manifests, const DesiredState& desired,
                  const std::map<std::string, ClusterSecrets>& secrets, World& world, Sessions& sessions,
                  Progress& progress, const ApplyOptions& options) {
  ApplyReport report;
  report.host_errors = plan.host_errors;
  StepContext context{manifests, desired, secrets, world, sessions, progress, options};
  auto runner = options.runner ? options.runner(context) : make_host_step_runner(context);
  auto check = [&](const Change& change) {
    auto token = progress.begin(change.host, "check-packages");
    auto result = runner->check(change, token);
    progress.finish(token, result ? "ok" : "failed: " + result.error().message);
    return result;
  };
  auto execute = [&](const Change& change) {
    std::string etcd = etcd_name(change.step);
    std::string what = !etcd.empty() ? etcd : change.member.empty() ? change.cluster : change.member;
    auto token = progress.begin(change.host.empty() ? (etcd.empty() ? change.cluster : "etcd " + etcd) : change.host,
                                to_string(change.step) + " " + what);
    auto result = runner->run(change, token);
    progress.finish(token, result ? "ok" : "failed: " + result.error().message);
    return result;
  };
  std::set<std::string> failed_hosts;
  // Hosts are prepared in parallel (a package install takes minutes), each host's changes in order.
  // First every planned install is resolved by apt without installing; a host where that fails
  // fails, and so does every cluster with a member there — the hosts only such clusters need are
  // then left as they were. A failed change ends that host's preparation.
  auto hosts_of = [&](auto&& pred) {
    std::vector<std::string> out;
    for (const auto& change : plan.host_changes)
      if (pred(change) && std::find(out.begin(), out.end(), change.host) == out.end()) out.push_back(change.host);
    return out;
  };
  auto for_hosts = [&](const std::vector<std::string>& hosts, auto&& work) {
    std::vector<std::vector<std::string>> errors(hosts.size());
    parallel_for(hosts.size(), options.workers, [&](std::size_t i) { work(hosts[i], errors[i]); });
    for (std::size_t i = 0; i < hosts.size(); ++i) {
      if (!errors[i].empty()) failed_hosts.insert(hosts[i]);
      report.host_errors.insert(report.host_errors.end(), errors[i].begin(), errors[i].end());
    }
  };
  auto install = [](const Change& c) { return std::get_if<steps::InstallPackages>(&c.step); };
  for_hosts(hosts_of([&](const Change& c) { return install(c) != nullptr; }),
            [&](const std::string& host, std::vector<std::string>& errors) {
              for (const auto& change : plan.host_changes)
                if (change.host == host && install(change) && !install(change)->after_repository)
                  if (auto r = check(change); !r) errors.push_back(r.error().message);
            });
  auto is_etcd = [](const Change& c) { return !etcd_name(c.step).empty(); };
  // Hosts of clusters and etcds no failed host stops.
  PreparationScope scope = preparation_scope(desired, failed_hosts);
  const auto& needed = scope.needed_hosts;
  std::atomic<std::size_t> applied{0};
  for_hosts(hosts_of([&](const Change& c) { return needed.contains(c.host) && !failed_hosts.contains(c.host) && !is_etcd(c); }),
            [&](const std::string& host, std::vector<std::string>& errors) {
              for (const auto& change : plan.host_changes) {
                if (change.host != host || is_etcd(change)) continue;
                if (stopping(options.stop)) {
                  errors.push_back(change.subject + ": " + k_stopping + " (not started)");
                  break;
                }
                if (auto r = execute(change); !r) {
                  errors.push_back(r.error().message);
                  break;
                }
                ++applied;
              }
            });
  report.host_changes_applied += applied;
  // Then the etcd pgconverge runs, in plan order (a start spans its members; member add goes
  // through one member before the new one starts). A failed step stops that etcd's later steps,
  // and the clusters using it; so does a host of it whose preparation failed.
  std::set<std::string> failed_etcds = scope.blocked_etcds;
  for (const auto& change : plan.host_changes) {
    if (!is_etcd(change)) continue;
    std::string etcd = etcd_name(change.step);
    if (scope.blocked_etcds.contains(etcd)) {
      report.host_errors.push_back(change.subject + ": skipped, a host of etcd " + etcd + " could not be prepared");
      continue;
    }
    if (failed_etcds.contains(etcd)) {
      report.host_errors.push_back(change.subject + ": skipped, an earlier step of etcd " + etcd + " failed");
      continue;
    }
    if (failed_hosts.contains(change.host)) {
      report.host_errors.push_back(change.subject + ": skipped, preparing host " + change.host + " failed");
      failed_etcds.insert(etcd);
      continue;
    }
    if (stopping(options.stop)) {
      report.host_errors.push_back(change.subject + ": " + k_stopping + " (not started)");
      failed_etcds.insert(etcd);
      continue;
    }
    if (auto r = execute(change); !r) {
      report.host_errors.push_back(change.subject + ": " + r.error().message);
      failed_etcds.insert(etcd);
    } else {
      ++report.host_changes_applied;
    }
  }
  // Clusters are independent: run them in parallel, each in order.
  report.clusters.resize(plan.clusters.size());
  parallel_for(plan.clusters.size(), options.workers, [&](std::size_t i) {
    const auto& cp = plan.clusters[i];
    auto& outcome = report.clusters[i];
    ScopedTally tally(&outcome.waits);
    outcome.name = cp.name;
    outcome.errors = cp.errors;
    if (const auto* dc = find_cluster(desired, cp.name); dc && failed_etcds.contains(dc->dcs_name) && !cp.changes.empty()) {
      outcome.errors.push_back("cluster " + cp.name + ": skipped, its DCS etcd " + dc->dcs_name + " failed to converge");
      return;
    }
    // A cluster with a member on a host whose preparation failed is left alone: no member of it
    // starts half-prepared elsewhere.
    bool host_failed = false;
    if (const auto* dc = find_cluster(desired, cp.name))
      for (const auto& m : dc->members)
        if (!host_failed && failed_hosts.contains(m.host)) {
          outcome.errors.push_back("cluster " + cp.name + ": not applied: preparing host " + m.host + " failed");
          host_failed = true;
        }
    for (const auto& change : cp.changes) {
      if (host_failed) break;
      if (stopping(options.stop)) {
        outcome.errors.push_back(change.subject + ": " + k_stopping + " (not started)");
        break;
      }
      if (auto r = execute(change); !r) {
        outcome.errors.push_back(change.subject + ": " + r.error().message);
        break;  // later steps depend on this one
      }
      ++outcome.applied;
    }
    const auto* dc = find_cluster(desired, cp.name);
    if (!dc || !secrets.contains(cp.name)) return;
    bool wait = outcome.errors.empty() && !stopping(options.stop);
    outcome.differences = wait_converged(*dc, secrets.at(cp.name), world, wait ? options.wait_timeout : std::chrono::seconds(0),
                                         options.workers, &progress, &outcome.observed.emplace(), options.stop,
                                         &outcome.waits);
    outcome.converged = outcome.differences.empty();
    // Errors and differences quote what hosts and Patroni answered: shown, so redacted.
    for (auto* list : {&outcome.errors, &outcome.differences})
      for (auto& text : *list) text = redact_text(text, &secrets.at(cp.name));
  });
  for (auto& e : report.host_errors) e = redact_text(e);
  return report;
}

}  // namespace pgc::reconciler
