#include "reconciler/serve.hpp"

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "manifests/model.hpp"
#include "providers/http/http_server.hpp"
#include "reconciler/apply_run.hpp"
#include "reconciler/metrics.hpp"
#include "reconciler/passes/fetch_pass.hpp"
#include "reconciler/etcd_tls.hpp"
#include "reconciler/serve_http.hpp"
#include "reconciler/webhook_triggers.hpp"
#include "reconciler/yaml_json.hpp"
#include "util/atomic_file.hpp"
#include "util/file_permissions.hpp"
#include "util/host_identity.hpp"
#include "util/duration.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Reads the config's fields with errors that name the file and the field.
class ConfigReader {
 public:
  ConfigReader(std::string file, const json& root) : file_(std::move(file)), root_(root) {}

  std::vector<std::string> errors;

  const json* at(const std::string& dotted) const {
    const json* node = &root_;
    for (const auto& part : split(dotted, '.')) {
      if (!node->is_object() || !node->contains(part)) return nullptr;
      node = &(*node)[part];
    }
    return node;
  }
  std::string string(const std::string& field, std::string fallback = "") {
    const json* v = at(field);
    if (!v || v->is_null()) return fallback;
    if (!v->is_string()) {
      error(field, "must be a string");
      return fallback;
    }
    return v->get<std::string>();
  }
  bool boolean(const std::string& field, bool fallback) {
    const json* v = at(field);
    if (!v || v->is_null()) return fallback;
    if (!v->is_boolean()) {
      error(field, "must be true or false");
      return fallback;
    }
    return v->get<bool>();
  }
  std::chrono::milliseconds duration(const std::string& field, std::chrono::milliseconds fallback,
                                     std::chrono::milliseconds minimum) {
    std::string text = string(field);
    if (text.empty()) return fallback;
    auto d = parse_duration(text);
    if (!d) error(field, "must be a duration such as 30s, 1m or 1h30m (got \"" + text + "\")");
    else if (*d < minimum) error(field, "must be at least " + std::to_string(minimum.count()) + "ms");
    return d && *d >= minimum ? *d : fallback;
  }
  void error(const std::string& field, const std::string& message) {
    errors.push_back(file_ + ": " + field + ": " + message);
  }
  void only(const json& object, const std::string& where, const std::vector<std::string>& known) {
    if (!object.is_object()) return;
    for (const auto& [key, value] : object.items())
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string hint;
        if (auto close = closest_match(key, known)) hint = " (did you mean '" + *close + "'?)";
        error(where.empty() ? key : where + "." + key, "unknown field" + hint);
      }
  }

 private:
  std::string file_;
  const json& root_;
};

// A secret from its own file: trimmed, never echoed; the file must not be readable by others.
std::string read_secret(ConfigReader& r, const std::string& field, const std::string& path) {
  auto everyone = readable_by_everyone(path);
  if (!everyone) {
    r.error(field, "cannot read " + path);
    return "";
  }
  if (*everyone) {
    r.error(field, path + " is readable by everyone; chmod 0600 it");
    return "";
  }
  auto text = read_whole_file(path);
  if (!text) {
    r.error(field, "cannot read " + path);
    return "";
  }
  auto secret = trim(*text);
  if (secret.size() < 16) r.error(field, path + " holds fewer than 16 characters; use a long random secret");
  return secret;
}

// source: the git URL (or directory), extra directories, ref, path, commit verification.
void read_source(ConfigReader& r, ServeConfig& c) {
  if (const json* s = r.at("source")) {
    r.only(*s, "source", {"url", "ref", "path", "extra", "verifyCommits", "credentialsFile", "fetchTimeout"});
    std::string url = r.string("source.url");
    if (url.empty()) r.error("source.url", "is required (a git URL or a directory)");
    if (const json* extra = r.at("source.extra")) {
      if (!extra->is_array()) r.error("source.extra", "must be a list of directories");
      else
        for (const auto& e : *extra)
          if (e.is_string()) c.source.locations.push_back(e.get<std::string>());
    }
    c.source.locations.push_back(url);
    c.source.ref = r.string("source.ref");
    c.source.credentials_file = r.string("source.credentialsFile");
    c.source.fetch_timeout = r.duration("source.fetchTimeout", c.source.fetch_timeout, 1s);
    c.source.path = r.string("source.path");
    if (const json* v = r.at("source.verifyCommits")) {
      r.only(*v, "source.verifyCommits", {"sshAllowedSigners", "gpgKeyring"});
      c.source.commits.verify = true;
      c.source.commits.ssh_allowed_signers = r.string("source.verifyCommits.sshAllowedSigners");
      c.source.commits.gpg_keyring = r.string("source.verifyCommits.gpgKeyring");
      if (c.source.commits.ssh_allowed_signers.empty() && c.source.commits.gpg_keyring.empty())
        r.error("source.verifyCommits", "needs sshAllowedSigners and/or gpgKeyring");
    }
  } else {
    r.error("source", "is required");
  }
}

// stateDir and ssh (the source's git over ssh uses the same key and known_hosts).
void read_state_and_ssh(ConfigReader& r, ServeConfig& c) {
  c.source.state_dir = r.string("stateDir", default_state_dir().string());
  if (const json* s = r.at("ssh")) r.only(*s, "ssh", {"identity", "knownHosts", "acceptNewHostKeys"});
  c.ssh.identity_file = r.string("ssh.identity");
  c.ssh.known_hosts_file = r.string("ssh.knownHosts");
  c.ssh.new_host_keys = r.boolean("ssh.acceptNewHostKeys", false) ? NewHostKeys::accept : NewHostKeys::refuse;
  c.source.ssh_identity = c.ssh.identity_file;
  c.source.known_hosts = c.ssh.known_hosts_file;
  c.source.new_host_keys = c.ssh.new_host_keys;
}

// Timings, limits, listeners and the log format.
void read_limits(ConfigReader& r, ServeConfig& c) {
  c.interval = r.duration("interval", 60s, 1s);
  c.resync = r.duration("resync", 10min, 1s);
  c.wait_timeout = std::chrono::duration_cast<std::chrono::seconds>(r.duration("waitTimeout", 180s, 1s));
  c.lock_timeout = std::chrono::duration_cast<std::chrono::seconds>(r.duration("lockTimeout", 300s, 0s));
  c.stuck_after = r.duration("stuckAfter", c.stuck_after, 1s);
  if (const json* j = r.at("jitter")) {
    if (!j->is_number() || j->get<double>() < 0 || j->get<double>() > 0.5)
      r.error("jitter", "must be a number from 0 to 0.5 (a fraction of interval)");
    else c.jitter = j->get<double>();
  }
  if (const json* w = r.at("workers")) {
    if (!w->is_number_integer() || w->get<int>() < 1 || w->get<int>() > 256) r.error("workers", "must be 1 to 256");
    else c.workers = w->get<std::size_t>();
  }
  if (const json* m = r.at("maxBodyBytes")) {
    if (!m->is_number_integer() || m->get<long long>() < 1024 || m->get<long long>() > (64LL << 20))
      r.error("maxBodyBytes", "must be 1024 to 67108864");
    else c.max_body = m->get<std::size_t>();
  }
  c.listen = r.string("listen", c.listen);
  if (const json* m = r.at("maxConnectionsPerAddress")) {
    if (!m->is_number_integer() || m->get<long long>() < 1 || m->get<long long>() > 64)
      r.error("maxConnectionsPerAddress", "must be 1 to 64 (the server holds 64 connections in all)");
    else c.max_connections_per_address = m->get<std::size_t>();
  }
  c.metrics_listen = r.string("metricsListen");
  if (!c.metrics_listen.empty() && c.listen.empty()) r.error("metricsListen", "needs listen (the webhooks' address)");
  if (!c.metrics_listen.empty() && c.metrics_listen == c.listen) r.error("metricsListen", "must differ from listen");
  std::string format = r.string("logFormat", "text");
  if (format == "json") c.log_format = LogFormat::json;
  else if (format != "text") r.error("logFormat", "must be text or json");
}

// One entry of webhooks; others are the entries before it (each path serves one receiver).
WebhookReceiver read_webhook(ConfigReader& r, const json& h, const std::string& where,
                             const std::vector<WebhookReceiver>& others) {
  r.only(h, where, {"name", "kind", "path", "secretFile", "minInterval"});
  WebhookReceiver w;
  auto field = [&](const char* key) {
    auto it = h.find(key);
    if (it == h.end()) return std::string();
    if (!it->is_string()) r.error(where + "." + key, "must be a string");
    return it->is_string() ? it->get<std::string>() : std::string();
  };
  w.name = field("name");
  std::string kind = field("kind");
  w.path = field("path");
  std::string secret_file = field("secretFile");
  if (auto interval = field("minInterval"); !interval.empty()) {
    auto d = parse_duration(interval);
    if (!d) r.error(where + ".minInterval", "must be a duration such as 5s or 1m (got \"" + interval + "\")");
    else if (*d < 1s) r.error(where + ".minInterval", "must be at least 1000ms");
    else w.min_interval = *d;
  }
  if (kind == "github" || kind == "gitea") w.kind = WebhookKind::github;
  else if (kind == "gitlab") w.kind = WebhookKind::gitlab;
  else if (kind == "generic") w.kind = WebhookKind::generic;
  else r.error(where + ".kind", "must be github, gitea, gitlab or generic (got \"" + kind + "\")");
  if (w.name.empty()) w.name = kind;
  if (w.path.empty() || w.path.front() != '/') r.error(where + ".path", "must be an absolute path such as /hooks/github");
  for (const auto& other : others)
    if (other.path == w.path) r.error(where + ".path", w.path + " is already used by webhook " + other.name);
  if (secret_file.empty()) r.error(where + ".secretFile", "is required: the secret is read from a file");
  else w.secret = read_secret(r, where + ".secretFile", secret_file);
  return w;
}

// webhooks: a list of receivers, each with a secret read from its own file.
void read_webhooks(ConfigReader& r, ServeConfig& c) {
  const json* hooks = r.at("webhooks");
  if (!hooks) return;
  if (!hooks->is_array()) {
    r.error("webhooks", "must be a list");
    return;
  }
  for (std::size_t i = 0; i < hooks->size(); ++i) {
    const auto& h = (*hooks)[i];
    std::string where = "webhooks[" + std::to_string(i) + "]";
    if (!h.is_object()) {
      r.error(where, "must be a mapping with name, kind, path and secretFile");
      continue;
    }
    c.webhooks.push_back(read_webhook(r, h, where, c.webhooks));
  }
}

// ownership.tls: https endpoints (all of them) with the CA that signed etcd's certificate and,
// when etcd asks for one, a client certificate and key: files read and checked once, at start.
void read_ownership_tls(ConfigReader& r, bool https, bool plain, OwnershipConfig& own) {
  const json* t = r.at("ownership.tls");
  bool given = t && !t->is_null();
  if (given) r.only(*t, "ownership.tls", {"caFile", "certFile", "keyFile"});
  if (https && plain) return r.error("ownership.etcd", "mixes https:// with plain endpoints: give every endpoint one scheme");
  if (!https) {
    if (given) r.error("ownership.tls", "needs https:// endpoints in ownership.etcd");
    return;
  }
  std::string ca_file = r.string("ownership.tls.caFile");
  std::string certificate_file = r.string("ownership.tls.certFile");
  std::string key_file = r.string("ownership.tls.keyFile");
  if (ca_file.empty()) return r.error("ownership.tls.caFile", "https:// endpoints need the CA that signed etcd's certificate");
  if (certificate_file.empty() != key_file.empty())
    return r.error("ownership.tls", "certFile and keyFile come together");
  auto tls = read_etcd_client_files(ca_file, certificate_file, key_file,
                                    std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
  if (!tls) {  // "keyFile: why": the key names the field
    const std::string& why = tls.error().message;
    auto colon = why.find(": ");
    return r.error("ownership.tls." + why.substr(0, colon), why.substr(colon + 2));
  }
  own.tls = std::move(*tls);
}

// ownership: several instances sharing clusters through etcd leases.
void read_ownership(ConfigReader& r, ServeConfig& c) {
  const json* o = r.at("ownership");
  if (!o || o->is_null()) return;
  r.only(*o, "ownership", {"etcd", "instance", "leaseTtl", "tls"});
  OwnershipConfig own;
  bool https = false, plain = false;
  const json* endpoints = r.at("ownership.etcd");
  if (!endpoints || !endpoints->is_array() || endpoints->empty()) {
    r.error("ownership.etcd", "must be a non-empty list of etcd endpoints (host:port)");
  } else {
    for (std::size_t i = 0; i < endpoints->size(); ++i) {
      const auto& e = (*endpoints)[i];
      std::string where = "ownership.etcd[" + std::to_string(i) + "]";
      if (!e.is_string()) {
        r.error(where, "must be a string host:port");
        continue;
      }
      auto endpoint = e.get<std::string>();
      (endpoint.rfind("https://", 0) == 0 ? https : plain) = true;
      endpoint = manifests::etcd_endpoint_address(endpoint);
      if (!providers::make_etcd_client({{endpoint}, 1s, {}, {}}))
        r.error(where, "\"" + e.get<std::string>() + "\" is not host:port, http://host:port or https://host:port");
      own.etcd.push_back(endpoint);
    }
  }
  read_ownership_tls(r, https, plain, own);
  own.instance = r.string("ownership.instance", local_host_name() + "-" + std::to_string(local_process_id()));
  if (own.instance.empty() || own.instance.size() > 200) r.error("ownership.instance", "must be 1 to 200 characters");
  auto ttl = r.duration("ownership.leaseTtl", 10s, 2s);
  if (ttl % 1000ms != 0ms) r.error("ownership.leaseTtl", "must be whole seconds (etcd leases count in seconds)");
  own.lease_ttl = std::chrono::duration_cast<std::chrono::seconds>(ttl);
  c.ownership = std::move(own);
}

}  // namespace

Result<ServeConfig> load_serve_config(const std::filesystem::path& file) {
  auto text = read_whole_file(file);
  if (!text) return fail(file.string() + ": " + text.error().message);
  auto root = yaml_to_json(*text);
  if (!root) return fail(file.string() + ": " + root.error().message);
  if (!root->is_object()) return fail(file.string() + ": must be a mapping of settings");
  ConfigReader r(file.string(), *root);
  r.only(*root, "", {"source", "stateDir", "ssh", "interval", "resync", "jitter", "waitTimeout", "lockTimeout",
                     "workers", "listen", "metricsListen", "maxConnectionsPerAddress", "maxBodyBytes", "webhooks",
                     "logFormat", "ownership", "stuckAfter"});
  ServeConfig c;
  read_source(r, c);
  read_state_and_ssh(r, c);
  read_limits(r, c);
  read_webhooks(r, c);
  read_ownership(r, c);
  if (!r.errors.empty()) return fail(join(r.errors, "\n"));
  return c;
}

namespace {

class Daemon {
 public:
  Daemon(const ServeConfig& config, World& world, EventLog& log, const std::atomic<bool>& stop)
      : config_(config), world_(world), log_(log), stop_(stop), verifier_(config.webhooks) {}

  int run() {
    std::unique_ptr<ServeListeners> server;
    if (!config_.listen.empty()) {
      providers::http::HttpServerOptions http;
      http.listen = config_.listen;
      http.max_body = config_.max_body;
      http.max_connections_per_address = config_.max_connections_per_address;
      auto started = ServeListeners::start(http, config_.metrics_listen, metrics_,
                                           [this](const auto& r) { return handle(r); });
      if (!started) {
        log_.event("error", {{"message", "serve: " + started.error().message}});
        return 1;
      }
      server = std::move(*started);
      log_.event("listening", {{"address", server->bound_address()}});
      if (!config_.metrics_listen.empty())
        log_.event("listening", {{"address", server->metrics_bound_address()}, {"serves", "/metrics /healthz"}});
    }
    if (config_.ownership) {
      // An endpoint on a host that runs are connected to goes through its SSH (World::etcd_route).
      auto client = providers::make_etcd_client({config_.ownership->etcd, 2s, world_.etcd_route(), config_.ownership->tls});
      if (!client) {
        log_.event("error", {{"message", "serve: ownership: " + client.error().message}});
        return 1;
      }
      ownership_ = std::make_unique<Ownership>(*config_.ownership, std::move(*client), log_, &stop_);
    }
    log_.event("started", {{"source", describe_locations(config_.source.locations)},
                           {"interval", std::to_string(config_.interval.count()) + "ms"},
                           {"resync", std::to_string(config_.resync.count()) + "ms"}});
    auto next_poll = std::chrono::steady_clock::now();
    while (!stop_) {
      std::string trigger = wait_for_trigger(next_poll);
      if (stop_) break;
      run_once(trigger);
      next_poll = std::chrono::steady_clock::now() + jittered(config_.interval);
    }
    stopping_ = true;
    log_.event("stopping", {{"reason", "signal"}});
    if (ownership_) ownership_->stop();  // revokes the lease: other instances take over at once
    if (server) server->stop();
    log_.event("stopped", {});
    return 0;
  }

 private:
  // Sleeps until the poll is due, a webhook asks, or stop; returns the trigger.
  std::string wait_for_trigger(std::chrono::steady_clock::time_point next_poll) {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      auto now = std::chrono::steady_clock::now();
      if (auto receiver = triggers_.take(now)) return "webhook:" + *receiver;
      if (now >= next_poll) return "poll";
      auto until = std::min(next_poll, triggers_.next_due().value_or(next_poll));
      // Short slices: the stop flag is set from a signal handler, which cannot notify.
      cv_.wait_for(lock, std::min<std::chrono::steady_clock::duration>(until - now, 200ms));
    }
    return "";
  }

  // One run, whatever happens in it: an exception fails this run alone (logged, counted,
  // recorded), and /healthz can tell a run that does not end.
  void run_once(const std::string& trigger) {
    const auto started = std::chrono::steady_clock::now();
    run_started_ns_ = started.time_since_epoch().count();
    std::string failure;
    try {
      reconcile(trigger);
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "unknown exception";
    }
    run_started_ns_ = 0;
    if (failure.empty()) return;
    failure = "run failed: " + failure;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    log_.event("error", {{"trigger", trigger}, {"message", failure}});
    try {
      metrics_.observe_reconcile("failure", seconds);
      ApplyRunOptions options;
      options.command = "serve";
      options.trigger = trigger;
      options.run.state_dir = config_.source.state_dir;
      options.lock_wait = config_.lock_timeout;
      options.revision.source = describe_locations(config_.source.locations);
      record_failure(options, failure);
    } catch (const std::exception& e) {
      log_.event("error", {{"message", std::string("recording the failed run: ") + e.what()}});
    }
  }

  // Why /healthz should fail: the current run has been going for longer than stuck_after.
  std::optional<std::string> stuck() const {
    const auto since = run_started_ns_.load();
    if (since == 0) return std::nullopt;
    const auto running = std::chrono::steady_clock::now() -
                         std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(since));
    if (running <= config_.stuck_after) return std::nullopt;
    return "stuck: a run has been in progress for " +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(running).count()) +
           " s, beyond stuckAfter (" + std::to_string(config_.stuck_after.count()) + " ms)";
  }

  std::chrono::milliseconds jittered(std::chrono::milliseconds base) {
    std::uniform_real_distribution<double> d(-config_.jitter, config_.jitter);
    return std::chrono::milliseconds(static_cast<long long>(static_cast<double>(base.count()) * (1.0 + d(rng_))));
  }

  // One run of the daemon: the apply run (apply_run.hpp: fetch → lock → load → compile → observe
  // → plan → apply → verify → record), which the fetch's hooks end after the fetch when nothing
  // changed and no resync is due → events and metrics of its outcome.
  void reconcile(const std::string& trigger) {
    auto started = std::chrono::steady_clock::now();
    ApplyRunOptions options = run_options(trigger);
    options.fetch = fetch_hooks(trigger, started);
    auto record = apply_logged(options);
    if (!record) return;
    last_sha_ = record->revision.sha;
    last_run_ = started;
    log_outcome(*record, record->trigger);
    update_metrics(*record);
  }

  // The apply run's options for a run of this daemon (ownership's hooks included).
  ApplyRunOptions run_options(const std::string& trigger) {
    ApplyRunOptions options;
    options.command = "serve";
    options.trigger = trigger;
    options.run.state_dir = config_.source.state_dir;
    options.run.workers = config_.workers;
    options.apply.wait_timeout = config_.wait_timeout;
    options.apply.workers = config_.workers;
    options.apply.stop = &stop_;
    if (ownership_) {
      // Fenced or stopping: apply stops between steps.
      options.apply.stop = &ownership_->halt();
      options.owned = [this](const DesiredState& desired) {
        std::vector<std::pair<std::string, std::string>> clusters{{"", ""}};
        for (const auto& c : desired.clusters) clusters.emplace_back(c.namespace_, c.name);
        auto mine = ownership_->acquire(clusters);
        last_clusters_ = clusters;
        last_owned_ = mine ? *mine : std::set<std::string>();
        return mine;
      };
      options.acting = [this](const std::set<std::string>& clusters, bool starting) {
        auto at = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
        for (const auto& c : clusters)
          log_.event(starting ? "cluster-apply-start" : "cluster-apply-end",
                     {{"cluster", c}, {"instance", ownership_->instance()}, {"at_ms", std::to_string(at)}});
      };
    }
    options.lock_wait = config_.lock_timeout;
    options.source = config_.source;
    options.source.cancel = &stop_;
    return options;
  }

  // The daemon's side of the fetch pass: warnings, a stale or rewound revision and failures as
  // events and metrics; a failure recorded once while it repeats, not at all when SIGTERM killed
  // the fetch; the run declined when nothing changed and no resync is due.
  FetchHooks fetch_hooks(const std::string& trigger, std::chrono::steady_clock::time_point started) {
    FetchHooks hooks;
    hooks.warn = [this](const std::string& w) { log_.event("warning", {{"message", w}}); };
    hooks.failed = [this, trigger](const Error& error) {
      if (stop_) return false;
      metrics_.count_fetch_failure();
      log_.event("source-failed", {{"trigger", trigger}, {"error", error.message}});
      const bool repeated = error.message == last_source_error_;
      last_source_error_ = error.message;
      return !repeated;
    };
    hooks.fetched = [this, started](const ResolvedSource& source, std::string& why) {
      last_source_error_.clear();
      const auto& rev = source.revision;
      if (rev.stale) {
        metrics_.count_fetch_failure();
        log_.event("fetch-failed", {{"error", rev.fetch_error}, {"using", rev.short_sha}});
      }
      if (rev.rewound) log_.event("rewound", {{"revision", rev.short_sha}, {"message", "not a descendant of the previous revision (force-push); applying it"}});
      why = reason_to_run(why, rev, started);
      if (why.empty()) return false;
      log_.event("reconcile", {{"trigger", why}, {"revision", rev.sha.empty() ? rev.source : rev.short_sha},
                               {"subject", rev.subject}});
      return true;
    };
    return hooks;
  }

  // Why this poll or webhook runs: "poll" (a new revision), "resync", "ownership" or the
  // webhook's trigger; empty when a poll found nothing to do.
  std::string reason_to_run(const std::string& trigger, const Revision& rev,
                            std::chrono::steady_clock::time_point started) {
    bool changed = rev.sha != last_sha_ || rev.sha.empty();
    bool resync_due = !last_run_ || started - *last_run_ >= config_.resync;
    // Ownership: an unchanged revision still runs when this instance's clusters changed (one
    // whose owner went away, or keys this instance lost), seen with a few etcd calls.
    bool ownership_changed = false;
    if (ownership_ && trigger == "poll" && !changed && !resync_due && !last_clusters_.empty()) {
      auto mine = ownership_->acquire(last_clusters_);
      ownership_changed = mine && *mine != last_owned_;
    }
    if (trigger == "poll" && !changed && !resync_due && !ownership_changed) return "";
    return trigger == "poll" ? (changed ? "poll" : ownership_changed ? "ownership" : "resync") : trigger;
  }

  // The apply run, its progress and diagnostics as events; nullopt when it did not run (the fetch
  // failed or found nothing to do: its hooks logged why).
  std::optional<RunRecord> apply_logged(const ApplyRunOptions& options) {
    std::ostringstream out, err;
    EventLogStream progress_out(log_);
    Progress progress(progress_out, log_.format() == LogFormat::json ? Progress::Style::json : Progress::Style::log);
    auto log_diagnostics = [&] {
      for (const auto& line : split(err.str(), '\n'))
        if (!trim(line).empty()) log_.event("diagnostic", {{"message", line}});
    };
    ApplyRunResult result;
    try {
      result = apply_run(options, world_, progress, out, err);
    } catch (...) {
      log_diagnostics();  // what the run said before it failed (run_once records the failure)
      throw;
    }
    log_diagnostics();
    if (!result.ran) return std::nullopt;
    return std::move(result.record);
  }

  // The run's errors, each cluster's readiness and the run's result as events.
  void log_outcome(const RunRecord& record, const std::string& why) {
    const auto& rev = record.revision;
    for (const auto& e : record.errors) log_.event("error", {{"message", e}});
    for (const auto& c : record.clusters) {
      const auto* ready = c.condition("Ready");
      log_.event("cluster", {{"cluster", c.namespace_ + "/" + c.name},
                             {"ready", ready ? ready->status : "Unknown"},
                             {"reason", ready ? ready->reason : ""},
                             {"message", ready ? ready->message : ""},
                             {"sync_standbys", std::to_string(c.sync_observed) + "/" + std::to_string(c.sync_desired)}});
    }
    log_.event("reconciled", {{"trigger", why},
                              {"revision", rev.sha.empty() ? rev.source : rev.short_sha},
                              {"result", record.result},
                              {"changes", std::to_string(record.changes_applied) + "/" + std::to_string(record.changes_planned)},
                              {"duration", std::to_string(record.duration_s) + "s"}});
  }

  void update_metrics(const RunRecord& record) {
    metrics_.observe_reconcile(record.result, record.duration_s);
    if (!record.revision.sha.empty() && record.result != "failure")
      metrics_.set_revision(record.revision.sha, record.revision.source);
    std::set<std::pair<std::string, std::string>> now;
    for (const auto& c : record.clusters) {
      const auto* ready = c.condition("Ready");
      metrics_.set_cluster(c.namespace_, c.name, ready && ready->status == "True", c.sync_desired, c.sync_observed);
      now.emplace(c.namespace_, c.name);
    }
    if (!record.clusters.empty() || record.result != "failure") {
      for (const auto& old : clusters_)
        if (!now.contains(old)) metrics_.remove_cluster(old.first, old.second);
      clusters_ = now;
    }
  }

  providers::http::HttpResponse handle(const providers::http::HttpRequest& request) {
    std::string path = request.target.substr(0, request.target.find('?'));
    if (path == "/metrics" && request.method == "GET")
      return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_.render()};
    if (path == "/healthz" && request.method == "GET") {
      if (stopping_) return {503, "text/plain; charset=utf-8", "stopping\n"};
      if (auto why = stuck()) return {503, "text/plain; charset=utf-8", *why + "\n"};
      return {200, "text/plain; charset=utf-8", "ok\n"};
    }
    std::string receiver;
    std::chrono::milliseconds min_interval{0};
    for (const auto& w : config_.webhooks)
      if (w.path == path) {
        receiver = w.name;
        min_interval = w.min_interval;
        break;
      }
    WebhookRequest hook{request.method, request.target, request.headers, request.body};
    auto verdict = verifier_.verify(hook);
    if (!receiver.empty()) metrics_.count_webhook(receiver, verdict.status);
    if (verdict.trigger) {
      std::lock_guard lock(mutex_);
      auto outcome = triggers_.offer(receiver, min_interval, std::chrono::steady_clock::now());
      metrics_.count_webhook_trigger(receiver, to_string(outcome));
      if (outcome != WebhookTriggers::Outcome::queued) verdict.message += " (" + std::string(to_string(outcome)) + ")";
      cv_.notify_all();
    }
    if (!receiver.empty() || verdict.status != 404)
      log_.event("webhook", {{"receiver", receiver}, {"peer", request.peer}, {"status", std::to_string(verdict.status)},
                             {"delivery", verdict.delivery_id}, {"message", verdict.message}});
    return {verdict.status, "text/plain; charset=utf-8", verdict.message + "\n"};
  }

  const ServeConfig& config_;
  World& world_;
  EventLog& log_;
  const std::atomic<bool>& stop_;
  WebhookVerifier verifier_;
  Metrics metrics_;
  std::mutex mutex_;
  std::condition_variable cv_;
  WebhookTriggers triggers_;  // under mutex_
  std::string last_sha_;
  std::string last_source_error_;
  std::optional<std::chrono::steady_clock::time_point> last_run_;
  std::set<std::pair<std::string, std::string>> clusters_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::chrono::steady_clock::rep> run_started_ns_{0};  // 0: no run in progress
  std::unique_ptr<Ownership> ownership_;
  std::vector<std::pair<std::string, std::string>> last_clusters_;  // of the last run, for ownership
  std::set<std::string> last_owned_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace

HostKeyRecorder host_key_logger(EventLog& log) {
  return [&log](const RecordedHostKey& key) {
    log.event("host-key-recorded", {{"connection", key.who},
                                    {"host", key.name},
                                    {"type", key.type},
                                    {"fingerprint", key.fingerprint},
                                    {"file", key.file},
                                    {"message", describe(key)}});
  };
}

int serve(const ServeConfig& config, World& world, EventLog& log, const std::atomic<bool>& stop) {
  Daemon daemon(config, world, log, stop);
  return daemon.run();
}

}  // namespace pgc::reconciler
