#include "reconciler/secrets.hpp"

#include <fstream>

#include "util/atomic_file.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

constexpr SecretKind k_all_kinds[] = {SecretKind::superuser, SecretKind::replication, SecretKind::rewind,
                                      SecretKind::restapi, SecretKind::pgbouncer};
// The kinds every cluster has had from the start: a secrets file without one is broken. Later
// kinds (pgbouncer) are added by add_missing_secrets().
constexpr SecretKind k_core_kinds[] = {SecretKind::superuser, SecretKind::replication,
                                       SecretKind::rewind, SecretKind::restapi};

std::string random_secret(std::ifstream& urandom) {
  static constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string value;
  while (value.size() < 32) {
    unsigned char byte = 0;
    urandom.read(reinterpret_cast<char*>(&byte), 1);
    if (!urandom) throw FatalError("short read from /dev/urandom");
    if (byte < 248) value += alphabet[byte % alphabet.size()];  // 248 = 4*62: no modulo bias
  }
  return value;
}

std::ifstream open_urandom() {
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  if (!urandom) throw FatalError("cannot open /dev/urandom to generate secrets");
  return urandom;
}

std::optional<SecretKind> parse_kind(const std::string& text) {
  for (auto kind : k_all_kinds)
    if (to_string(kind) == text) return kind;
  return std::nullopt;
}

}  // namespace

std::string to_string(SecretKind kind) {
  switch (kind) {
    case SecretKind::superuser: return "superuser";
    case SecretKind::replication: return "replication";
    case SecretKind::rewind: return "rewind";
    case SecretKind::restapi: return "restapi";
    case SecretKind::pgbouncer: return "pgbouncer";
  }
  return "unknown";
}

const std::string& ClusterSecrets::get(SecretKind kind) const {
  auto it = values.find(kind);
  if (it == values.end()) throw FatalError("internal: secret " + to_string(kind) + " missing");
  return it->second;
}

bool ClusterSecrets::complete() const {
  for (auto kind : k_core_kinds)
    if (!values.contains(kind) || values.at(kind).empty()) return false;
  return true;
}

ClusterSecrets generate_secrets() {
  auto urandom = open_urandom();
  ClusterSecrets secrets;
  for (auto kind : k_all_kinds) secrets.values[kind] = random_secret(urandom);
  return secrets;
}

bool add_missing_secrets(ClusterSecrets& secrets) {
  bool added = false;
  std::optional<std::ifstream> urandom;
  for (auto kind : k_all_kinds) {
    if (secrets.values.contains(kind) && !secrets.values.at(kind).empty()) continue;
    if (!urandom) urandom.emplace(open_urandom());
    secrets.values[kind] = random_secret(*urandom);
    added = true;
  }
  return added;
}

const std::vector<SecretPlacement>& secret_placements() {
  static const std::vector<SecretPlacement> placements{
      {SecretKind::superuser, "/postgresql/authentication/superuser/password"},
      {SecretKind::replication, "/postgresql/authentication/replication/password"},
      {SecretKind::rewind, "/postgresql/authentication/rewind/password"},
      {SecretKind::restapi, "/restapi/authentication/password"},
  };
  return placements;
}

std::optional<ClusterSecrets> recover_secrets(const nlohmann::json& config) {
  ClusterSecrets secrets;
  for (const auto& [kind, pointer] : secret_placements()) {
    nlohmann::json::json_pointer ptr(pointer);
    if (config.contains(ptr) && config.at(ptr).is_string()) secrets.values[kind] = config.at(ptr).get<std::string>();
  }
  if (!secrets.complete()) return std::nullopt;
  return secrets;
}

nlohmann::json resolve_secrets(const nlohmann::json& config, const ClusterSecrets& secrets) {
  // Typed placement: only the credential fields the compiler fills, and only with their own
  // reference. A "secret:..." string anywhere else stays the literal text it is.
  nlohmann::json out = config;
  for (const auto& [kind, pointer] : secret_placements()) {
    nlohmann::json::json_pointer ptr(pointer);
    if (out.contains(ptr) && out.at(ptr) == secret_reference(kind)) out[ptr] = secrets.get(kind);
  }
  return out;
}

nlohmann::json redact_secrets(const nlohmann::json& value, const ClusterSecrets& secrets) {
  if (value.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = value.begin(); it != value.end(); ++it) out[it.key()] = redact_secrets(it.value(), secrets);
    return out;
  }
  if (value.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : value) out.push_back(redact_secrets(v, secrets));
    return out;
  }
  if (value.is_string()) {
    for (const auto& [kind, secret] : secrets.values)
      if (!secret.empty() && value.get_ref<const std::string&>().find(secret) != std::string::npos)
        return std::string(k_redacted);
  }
  return value;
}

std::filesystem::path SecretStore::path_for(const std::string& ns, const std::string& cluster) const {
  return dir_ / "secrets" / (ns + "." + cluster + ".json");
}

Result<std::optional<ClusterSecrets>> SecretStore::load(const std::string& ns, const std::string& cluster) const {
  auto path = path_for(ns, cluster);
  if (!std::filesystem::exists(path)) return std::optional<ClusterSecrets>{};
  auto text = read_whole_file(path);
  if (!text) return std::unexpected(text.error().with_context("state dir"));
  auto doc = nlohmann::json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return fail("state dir: " + path.string() + ": not a valid secrets file");
  ClusterSecrets secrets;
  for (auto it = doc.begin(); it != doc.end(); ++it)
    if (auto kind = parse_kind(it.key()); kind && it.value().is_string()) secrets.values[*kind] = it.value();
  if (!secrets.complete()) return fail("state dir: " + path.string() + ": incomplete secrets file");
  return std::optional<ClusterSecrets>(secrets);
}

namespace {

std::filesystem::path rotation_path(const std::filesystem::path& secrets_file) {
  auto p = secrets_file;
  p.replace_extension(".rotate.json");
  return p;
}

Result<void> write_secrets_file(const std::filesystem::path& dir, const std::filesystem::path& path,
                                const ClusterSecrets& secrets) {
  nlohmann::json doc = nlohmann::json::object();
  for (const auto& [kind, value] : secrets.values) doc[to_string(kind)] = value;
  std::error_code ec;
  std::filesystem::create_directories(dir / "secrets", ec);
  std::filesystem::permissions(dir / "secrets", std::filesystem::perms::owner_all, ec);
  auto written = write_file_atomically(path, doc.dump(2) + "\n",
                                       std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  if (!written) return std::unexpected(written.error().with_context("state dir"));
  return {};
}

}  // namespace

const std::vector<SecretKind>& all_secret_kinds() {
  static const std::vector<SecretKind> kinds(std::begin(k_all_kinds), std::end(k_all_kinds));
  return kinds;
}

std::optional<SecretKind> parse_secret_kind(const std::string& text) { return parse_kind(text); }

Result<std::optional<ClusterSecrets>> SecretStore::load_rotation(const std::string& ns,
                                                                 const std::string& cluster) const {
  auto path = rotation_path(path_for(ns, cluster));
  if (!std::filesystem::exists(path)) return std::optional<ClusterSecrets>{};
  auto text = read_whole_file(path);
  if (!text) return std::unexpected(text.error().with_context("state dir"));
  auto doc = nlohmann::json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return fail("state dir: " + path.string() + ": not a valid rotation file");
  ClusterSecrets rotated;
  for (auto it = doc.begin(); it != doc.end(); ++it)
    if (auto kind = parse_kind(it.key()); kind && it.value().is_string() && !it.value().get<std::string>().empty())
      rotated.values[*kind] = it.value();
  if (rotated.values.empty()) return fail("state dir: " + path.string() + ": a rotation file without secrets");
  return std::optional<ClusterSecrets>(rotated);
}

Result<void> SecretStore::save_rotation(const std::string& ns, const std::string& cluster,
                                        const ClusterSecrets& rotated) const {
  return write_secrets_file(dir_, rotation_path(path_for(ns, cluster)), rotated);
}

Result<void> SecretStore::remove_rotation(const std::string& ns, const std::string& cluster) const {
  std::error_code ec;
  std::filesystem::remove(rotation_path(path_for(ns, cluster)), ec);
  if (ec) return fail("state dir: removing " + rotation_path(path_for(ns, cluster)).string() + ": " + ec.message());
  return {};
}

Result<void> SecretStore::save(const std::string& ns, const std::string& cluster,
                               const ClusterSecrets& secrets) const {
  return write_secrets_file(dir_, path_for(ns, cluster), secrets);
}

}  // namespace pgc::reconciler
