#include "reconciler/git_fetch.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <istream>
#include <ostream>
#include <vector>

#include <nlohmann/json.hpp>

#include "providers/process/process.hpp"
#include "util/base64.hpp"
#include "util/strings.hpp"
#include "util/url_userinfo.hpp"

namespace pgc::reconciler {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Time the child gets beyond options.timeout to start and exit (its own deadline is the same).
constexpr auto k_grace = 250ms;
// The offline child only reads the cache: it gets at most this long.
constexpr auto k_offline_timeout = 10000ms;

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json request_json(const providers::GitSourceOptions& o) {
  return {{"url", o.url},
          {"ref", o.ref},
          {"cacheDir", o.cache_dir.string()},
          {"sshIdentity", o.ssh_identity},
          {"knownHosts", o.known_hosts},
          {"acceptNewHostKeys", o.new_host_keys == NewHostKeys::accept},
          {"timeoutMs", o.timeout.count()},
          {"credentialsFile", o.credentials_file.string()},
          {"offline", o.offline},
          {"offlineReason", o.offline_reason}};
}

Result<providers::GitSourceOptions> request_from_json(const json& j) {
  if (!j.is_object() || !j.contains("url") || !j["url"].is_string() || !j.contains("timeoutMs") ||
      !j["timeoutMs"].is_number_integer())
    return fail("git sync request: not a request");
  providers::GitSourceOptions o;
  o.url = str(j, "url");
  o.ref = str(j, "ref");
  o.cache_dir = str(j, "cacheDir");
  o.ssh_identity = str(j, "sshIdentity");
  o.known_hosts = str(j, "knownHosts");
  o.new_host_keys = j.value("acceptNewHostKeys", false) ? NewHostKeys::accept : NewHostKeys::refuse;
  o.timeout = std::chrono::milliseconds(j["timeoutMs"].get<long long>());
  o.credentials_file = str(j, "credentialsFile");
  o.offline = j.value("offline", false);
  o.offline_reason = str(j, "offlineReason");
  return o;
}

json sync_json(const providers::GitSync& s, const std::vector<RecordedHostKey>& keys) {
  json recorded = json::array();
  for (const auto& k : keys)
    recorded.push_back({{"who", k.who}, {"name", k.name}, {"type", k.type}, {"fingerprint", k.fingerprint}, {"file", k.file}});
  return {{"ok", true},
          {"sha", s.revision.sha},
          {"shortSha", s.revision.short_sha},
          {"subject", s.revision.subject},
          {"author", s.revision.author},
          {"commitTime", s.revision.commit_time},
          {"checkout", s.checkout.string()},
          {"fetched", s.fetched},
          {"fetchError", s.fetch_error},
          {"previousSha", s.previous_sha ? json(*s.previous_sha) : json()},
          {"rewound", s.rewound},
          // The signed data is the raw commit object: base64, so that no byte is lost in JSON.
          {"signature", base64_encode(s.signature.signature)},
          {"signedData", base64_encode(s.signature.signed_data)},
          {"warnings", s.warnings},
          {"recordedHostKeys", recorded}};
}

Result<providers::GitSync> sync_from_json(const json& j, const providers::GitSourceOptions& options) {
  if (!j.is_object() || !j.contains("ok") || !j["ok"].is_boolean()) return fail("not an answer");
  if (!j["ok"].get<bool>()) return fail(str(j, "error"));
  providers::GitSync s;
  s.revision.sha = str(j, "sha");
  s.revision.short_sha = str(j, "shortSha");
  s.revision.subject = str(j, "subject");
  s.revision.author = str(j, "author");
  if (j.contains("commitTime") && j["commitTime"].is_number_integer()) s.revision.commit_time = j["commitTime"].get<std::int64_t>();
  s.checkout = str(j, "checkout");
  s.fetched = j.contains("fetched") && j["fetched"].is_boolean() && j["fetched"].get<bool>();
  s.fetch_error = str(j, "fetchError");
  if (j.contains("previousSha") && j["previousSha"].is_string()) s.previous_sha = j["previousSha"].get<std::string>();
  s.rewound = j.contains("rewound") && j["rewound"].is_boolean() && j["rewound"].get<bool>();
  s.signature.signature = base64_decode(str(j, "signature"));
  s.signature.signed_data = base64_decode(str(j, "signedData"));
  if (j.contains("warnings") && j["warnings"].is_array())
    for (const auto& w : j["warnings"])
      if (w.is_string()) s.warnings.push_back(w.get<std::string>());
  if (s.revision.sha.size() != 40 || s.checkout.empty()) return fail("the answer names no commit or checkout");
  if (options.on_host_key_recorded && j.contains("recordedHostKeys") && j["recordedHostKeys"].is_array())
    for (const auto& k : j["recordedHostKeys"])
      options.on_host_key_recorded({str(k, "who"), str(k, "name"), str(k, "type"), str(k, "fingerprint"), str(k, "file")});
  return s;
}

// One child run of the request.
Result<providers::GitSync> run_child(const providers::GitSourceOptions& options, const std::string& executable,
                                     const std::atomic<bool>* cancel, const std::string& who,
                                     const std::vector<std::string>& secrets) {
  const std::string request = request_json(options).dump();
  auto ran = providers::run_process(
      {executable, k_git_sync_command, "--parent", std::to_string(providers::current_pid())}, request,
      options.timeout + k_grace, cancel);
  if (!ran) {
    // run_process names argv[0]: say what it was doing instead.
    std::string why = ran.error().message;
    if (auto colon = why.find(": "); colon != std::string::npos) why = why.substr(colon + 2);
    return fail(who + ": fetch: " + (why.starts_with("timed out") ? "no answer within " +
                                                                         std::to_string(options.timeout.count()) +
                                                                         " ms; the fetch was killed"
                                                                   : why));
  }
  json answer = json::parse(ran->out, nullptr, false);
  if (answer.is_discarded()) {
    std::string last = trim(ran->err);
    if (auto nl = last.rfind('\n'); nl != std::string::npos) last = last.substr(nl + 1);
    return fail(who + ": the fetch process exited with code " + std::to_string(ran->exit_code) + " without an answer" +
                (last.empty() ? "" : ": " + scrub(redact_urls_in(last), secrets)));
  }
  auto sync = sync_from_json(answer, options);
  if (!sync) return fail(scrub(redact_urls_in(sync.error().message), secrets));
  return sync;
}

}  // namespace

Result<providers::GitSync> sync_in_child(const providers::GitSourceOptions& options, const std::string& executable,
                                         const std::atomic<bool>* cancel) {
  const auto userinfo = split_url_userinfo(options.url);
  const std::string who = "git " + userinfo.shown;
  const auto secrets = userinfo.secrets();
  auto sync = run_child(options, executable, cancel, who, secrets);
  if (sync || (cancel && cancel->load())) return sync;
  if (sync.error().message.find("the fetch was killed") == std::string::npos) return sync;
  std::error_code ec;
  if (!std::filesystem::exists(options.cache_dir / "last-good", ec)) return sync;  // nothing to fall back to
  // Killed at the deadline: the last good revision, as for any failed fetch (a local read).
  providers::GitSourceOptions offline = options;
  offline.offline = true;
  offline.timeout = std::min(options.timeout, std::chrono::milliseconds(k_offline_timeout));
  offline.offline_reason = sync.error().message.substr((who + ": fetch: ").size());
  auto fallback = run_child(offline, executable, cancel, who, secrets);
  if (!fallback) return sync;  // no last good revision (or that failed too): the timeout is the error
  return fallback;
}

int run_git_sync_child(std::istream& in, std::ostream& out, long parent_pid) {
  providers::die_with_parent(parent_pid);
  std::string text;
  std::array<char, 4096> chunk{};
  while (in.read(chunk.data(), chunk.size()) || in.gcount() > 0)
    text.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
  json request = json::parse(text, nullptr, false);
  auto options = request_from_json(request);
  if (!options) {
    out << json{{"ok", false}, {"error", options.error().message}}.dump() << "\n";
    return 1;
  }
  std::vector<RecordedHostKey> recorded;
  options->on_host_key_recorded = [&recorded](const RecordedHostKey& key) { recorded.push_back(key); };
  auto sync = providers::sync_git_source(*options);
  json answer = sync ? sync_json(*sync, recorded) : json{{"ok", false}, {"error", sync.error().message}};
  out << answer.dump(-1, ' ', false, json::error_handler_t::replace) << "\n" << std::flush;
  return 0;
}

}  // namespace pgc::reconciler
