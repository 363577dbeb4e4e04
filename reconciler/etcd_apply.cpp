#include "reconciler/etcd_apply.hpp"

#include <mutex>
#include <sstream>
#include <thread>

#include "reconciler/cluster_ca.hpp"
#include "reconciler/etcd.hpp"
#include "reconciler/etcd_tls.hpp"
#include "reconciler/step_support.hpp"
#include "util/parallel.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto k_etcdctl_timeout = std::chrono::seconds(15);
constexpr auto k_poll = std::chrono::milliseconds(500);

// One etcd step of one change: host is the change's (empty for a start, which names its hosts);
// client_url is where etcdctl reaches etcd on a member host.
class EtcdExecutor {
 public:
  EtcdExecutor(const std::string& host, std::string client_url, const manifests::ManifestSet& manifests,
               Sessions& sessions, Progress& progress, const Progress::Token& token, const ApplyOptions& options)
      : host_(host), manifests_(manifests), sessions_(sessions), progress_(progress), token_(token),
        options_(options), client_url_(std::move(client_url)) {}

  Result<void> run(const steps::EtcdWriteConfig& step) { return write_config(step); }
  Result<void> run(const steps::EtcdStart& step) { return start(step); }
  Result<void> run(const steps::EtcdRestart& step) { return restart(step); }
  Result<void> run(const steps::EtcdMemberAdd& step) { return member_add(step); }
  Result<void> run(const steps::EtcdMemberRemove& step) { return member_remove(step); }
  Result<void> run(const steps::EtcdStop&) { return stop(); }
  Result<void> run(const steps::EtcdWriteCertificate& step) { return write_certificate(step); }

 private:
  Result<providers::RemoteHost*> session(const std::string& host_name) {
    if (const auto* h = manifests_.find_host(host_name)) return sessions_.get(*h);
    return fail("host " + host_name + " is not declared");
  }

  // argv on a host; a non-zero exit is an error naming host, command and stderr.
  Result<providers::CommandResult> run_checked(const std::string& host_name, const std::vector<std::string>& argv,
                                               std::chrono::milliseconds timeout) {
    auto s = session(host_name);
    PGC_TRY(s);
    auto result = (*s)->run(argv, timeout);
    PGC_TRY(result);
    if (result->exit_status != 0)
      return fail("host " + (*s)->describe() + ": `" + join(argv, " ") + "` exited with status " +
                  std::to_string(result->exit_status) + ": " + trim(result->err).substr(0, 300));
    return result;
  }

  // systemctl start/restart of etcd.service waits for it to report ready (Type=notify): the
  // step's time, within what is left of the apply's bound.
  [[nodiscard]] std::chrono::milliseconds unit_timeout() const {
    return options_.deadline.left(std::chrono::duration_cast<std::chrono::milliseconds>(options_.wait_timeout),
                                  std::chrono::milliseconds(1000));
  }

  std::vector<std::string> etcdctl(std::vector<std::string> args) const {
    std::vector<std::string> argv{"env", "ETCDCTL_API=3", "etcdctl", "--endpoints=" + client_url_,
                                  "--dial-timeout=2s", "--command-timeout=5s"};
    auto tls = etcdctl_tls_flags(client_url_);
    argv.insert(argv.end(), tls.begin(), tls.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  Result<json> member_list(const std::string& host_name) {
    auto r = run_checked(host_name, etcdctl({"member", "list", "-w", "json"}), k_etcdctl_timeout);
    PGC_TRY(r);
    auto list = json::parse(r->out, nullptr, false);
    if (!list.is_object() || !list.contains("members") || !list["members"].is_array())
      return fail("host " + host_name + ": `etcdctl member list` printed no member list");
    return list;
  }

  // Polls `etcdctl endpoint health` on every host until all answer healthy or the wait ends.
  Result<void> wait_healthy(const std::vector<std::string>& hosts) {
    auto own = std::chrono::steady_clock::now() + options_.wait_timeout;
    auto deadline = options_.deadline.cut(options_.wait_timeout);
    std::string last;
    while (true) {
      std::vector<std::string> sick;
      for (const auto& h : hosts) {
        auto s = session(h);
        PGC_TRY(s);
        auto r = (*s)->run(etcdctl({"endpoint", "health"}), k_etcdctl_timeout);
        if (!r && r.error().is_permanent())  // e.g. the session refused: asking again changes nothing
          return std::unexpected(r.error().with_context("waiting for etcd /health on " + h));
        if (!r || r->exit_status != 0) {
          sick.push_back(h);
          last = !r ? r.error().message : trim(r->err.empty() ? r->out : r->err).substr(0, 200);
        }
      }
      if (sick.empty()) return {};
      if (std::chrono::steady_clock::now() >= deadline)
        return fail((deadline < own ? options_.deadline.reached() + " while"
                                    : "timed out after " + std::to_string(options_.wait_timeout.count()) + "s") +
                    " waiting for etcd /health on " + join(sick, ", ") + " (" + last + ")");
      if (options_.stop && options_.stop->load()) return fail("stopped: pgconverge is shutting down");
      progress_.update(token_, "waiting for etcd /health on " + join(sick, ", "));
      std::this_thread::sleep_for(k_poll);
    }
  }

  Result<void> write_config(const steps::EtcdWriteConfig& step) {
    auto s = session(host_);
    PGC_TRY(s);
    // The data directory etcd.service (User=etcd) needs; never Debian's /var/lib/etcd/default and
    // never emptied: an existing directory keeps its content, and must belong to etcd already
    // (never re-owned). Only a path the manifests' rule allows, checked again here.
    const std::string& data_dir = step.data_dir;
    if (auto allowed = manifests::check_etcd_data_directory(data_dir); !allowed.empty())
      return fail("internal: refusing etcd data directory \"" + data_dir + "\": " + allowed);
    if (auto made = (*s)->make_directory(data_dir, providers::FileMode{"etcd", "etcd", 0700},
                                         providers::RemoteHost::ExistingDirectory::owned);
        !made)
      return fail(made.error().message + " (step: preparing etcd's data directory)");
    return (*s)->write_file(step.path, step.content, providers::FileMode{"root", "root", 0644});
  }

  // enable + (re)start on every host at once: a member of a new cluster reports ready (Type=notify)
  // only once a quorum has started, so starting them one by one would block on the first.
  Result<void> start(const steps::EtcdStart& step) {
    const auto& hosts = step.hosts;
    bool restart_it = step.restart;
    // Sessions are opened here, one thread per host afterwards (a session serves one thread).
    for (const auto& h : hosts)
      PGC_TRY(session(h));
    std::vector<std::string> errors(hosts.size());
    parallel_for(hosts.size(), hosts.size(), [&](std::size_t i) {
      if (auto r = run_checked(hosts[i], {"systemctl", "enable", "etcd.service"}, k_command_timeout); !r) {
        errors[i] = r.error().message;
        return;
      }
      auto r = run_checked(hosts[i], {"systemctl", restart_it ? "restart" : "start", "etcd.service"}, unit_timeout());
      if (!r) errors[i] = r.error().message;
    });
    for (const auto& e : errors)
      if (!e.empty()) return fail(e);
    return wait_healthy(step.wait_hosts);
  }

  Result<void> restart(const steps::EtcdRestart& step) {
    if (auto r = run_checked(host_, {"systemctl", "restart", "etcd.service"}, unit_timeout()); !r)
      return std::unexpected(r.error());
    return wait_healthy(step.wait_hosts);
  }

  static bool lists_peer(const json& list, const std::string& peer_url) {
    for (const auto& m : list["members"])
      if (m.contains("peerURLs") && m["peerURLs"].is_array())
        for (const auto& u : m["peerURLs"])
          if (u == peer_url) return true;
    return false;
  }

  Result<void> member_add(const steps::EtcdMemberAdd& step) {
    const std::string& name = step.member;
    const std::string& peer = step.peer_url;
    auto before = member_list(host_);
    PGC_TRY(before);
    if (!lists_peer(*before, peer)) {
      // etcd refuses an add ("unhealthy cluster") until every member has been connected for a
      // few seconds (its strict reconfiguration check), e.g. right after the previous add: retry.
      auto deadline = options_.deadline.cut(options_.wait_timeout);
      while (true) {
        auto r = run_checked(host_, etcdctl({"member", "add", name, "--peer-urls=" + peer}), k_etcdctl_timeout);
        if (r) break;
        if (r.error().message.find("unhealthy cluster") == std::string::npos ||
            std::chrono::steady_clock::now() >= deadline || (options_.stop && options_.stop->load()))
          return std::unexpected(r.error());
        progress_.update(token_, "etcd refuses member add until every member is connected; retrying");
        std::this_thread::sleep_for(1s);
      }
    }
    auto after = member_list(host_);  // verified by observation, not by the exit status
    PGC_TRY(after);
    if (!lists_peer(*after, peer)) return fail("etcd: `member add " + name + "` done, but the member list lacks " + peer);
    return {};
  }

  Result<void> member_remove(const steps::EtcdMemberRemove& step) {
    const std::string& name = step.member;
    const std::string& id = step.id;
    auto find = [&](const json& list) -> std::string {
      for (const auto& m : list["members"]) {
        std::string mname = m.value("name", std::string());
        std::ostringstream hex;
        if (m.contains("ID") && m["ID"].is_number()) hex << std::hex << m["ID"].get<unsigned long long>();
        if ((!name.empty() && mname == name) || (name.empty() && hex.str() == id)) return hex.str();
      }
      return "";
    };
    auto before = member_list(host_);
    PGC_TRY(before);
    std::string found = find(*before);
    if (found.empty()) return {};  // already gone
    if (auto r = run_checked(host_, etcdctl({"member", "remove", found}), k_etcdctl_timeout); !r)
      return std::unexpected(r.error());
    auto after = member_list(host_);
    PGC_TRY(after);
    if (!find(*after).empty()) return fail("etcd: `member remove " + found + "` done, but " + name + " is still listed");
    return {};
  }

  // The key first, the certificate last (a failure midway leaves a mismatch the next plan sees);
  // the etcd's CA from the state dir, created there before apply (ensure_etcd_cas).
  // The files' content: issued by the managed etcd's CA, or an external etcd's files read again.
  Result<MemberTlsContent> certificate_content(const steps::EtcdWriteCertificate& step) {
    if (!step.given.ca_file.empty()) {
      auto client = external_etcd_client(step.given);
      PGC_TRY(client);
      return MemberTlsContent{.certificate = client->certificate_pem, .private_key = client->key_pem, .ca = client->ca_pem};
    }
    if (options_.state_dir.empty()) return fail("internal: no state dir for the CA of etcd " + step.etcd);
    auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    auto ca = ClusterCaStore(options_.state_dir).load_etcd(step.etcd);
    PGC_TRY(ca);
    if (!*ca) return fail("internal: the state dir holds no CA of etcd " + step.etcd);
    EtcdCertificate wanted{step.files, step.common_name, step.dns_names, step.ip_addresses};
    return etcd_certificate_content(wanted, **ca, now);
  }

  Result<void> write_certificate(const steps::EtcdWriteCertificate& step) {
    auto content = certificate_content(step);
    PGC_TRY(content);
    auto s = session(host_);
    PGC_TRY(s);
    const auto& f = step.files;
    using Existing = providers::RemoteHost::ExistingDirectory;
    if (auto made = (*s)->make_directory(f.dir, {"root", f.group, 0750}, Existing::owned); !made)
      return fail(made.error().message + " (step: the etcd TLS directory)");
    if (!content->private_key.empty())
      PGC_TRY((*s)->write_file(f.private_key, content->private_key, providers::FileMode{"root", f.group, 0640}));
    PGC_TRY((*s)->write_file(f.ca, content->ca, providers::FileMode{"root", f.group, 0644}));
    if (!content->certificate.empty())
      PGC_TRY((*s)->write_file(f.certificate, content->certificate, providers::FileMode{"root", f.group, 0644}));
    if (step.wait_hosts.empty()) return {};
    return wait_healthy(step.wait_hosts);
  }

  Result<void> stop() {
    if (auto r = run_checked(host_, {"systemctl", "stop", "etcd.service"}, k_command_timeout); !r)
      return std::unexpected(r.error());
    if (auto r = run_checked(host_, {"systemctl", "disable", "etcd.service"}, k_command_timeout); !r)
      return std::unexpected(r.error());
    return {};
  }

  const std::string& host_;
  const manifests::ManifestSet& manifests_;
  Sessions& sessions_;
  Progress& progress_;
  const Progress::Token& token_;
  const ApplyOptions& options_;
  std::string client_url_;
};

}  // namespace

namespace {

// The executor of one step: host is the change's; the steps without etcdctl have no client URL.
template <typename S>
Result<void> run_step(const StepContext& context, const S& step, const Change& change, const Progress::Token& token) {
  std::string client_url = "http://127.0.0.1:2379";
  if constexpr (requires { step.client_url; }) client_url = step.client_url;
  return EtcdExecutor(change.host, client_url, context.manifests, context.sessions, context.progress, token,
                      context.options)
      .run(step);
}

}  // namespace

Result<void> EtcdSteps::run(const steps::EtcdWriteConfig& step, const Change& change, const Progress::Token& token) {
  return run_step(context_, step, change, token);
}
Result<void> EtcdSteps::run(const steps::EtcdStart& step, const Change& change, const Progress::Token& token) {
  return run_step(context_, step, change, token);
}
Result<void> EtcdSteps::run(const steps::EtcdRestart& step, const Change& change, const Progress::Token& token) {
  return run_step(context_, step, change, token);
}
Result<void> EtcdSteps::run(const steps::EtcdMemberAdd& step, const Change& change, const Progress::Token& token) {
  return run_step(context_, step, change, token);
}
Result<void> EtcdSteps::run(const steps::EtcdMemberRemove& step, const Change& change, const Progress::Token& token) {
  return run_step(context_, step, change, token);
}
Result<void> EtcdSteps::run(const steps::EtcdStop& step, const Change& change, const Progress::Token& token) {
  return run_step(context_, step, change, token);
}
Result<void> EtcdSteps::run(const steps::EtcdWriteCertificate& step, const Change& change,
                            const Progress::Token& token) {
  return run_step(context_, step, change, token);
}

}  // namespace pgc::reconciler
