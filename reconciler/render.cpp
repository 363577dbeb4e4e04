#include "reconciler/render.hpp"

#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

using ordered = nlohmann::ordered_json;

// A copy of value with secret references and passwords replaced by <redacted>.
ordered redacted(const nlohmann::json& value, bool under_password = false) {
  if (value.is_object()) {
    ordered out = ordered::object();
    for (auto it = value.begin(); it != value.end(); ++it) out[it.key()] = redacted(it.value(), under_password || it.key() == "password");
    return out;
  }
  if (value.is_array()) {
    ordered out = ordered::array();
    for (const auto& v : value) out.push_back(redacted(v, under_password));
    return out;
  }
  if (value.is_string() &&
      (under_password || starts_with(value.get_ref<const std::string&>(), k_secret_prefix)))
    return std::string(k_redacted);
  if (under_password && !value.is_null()) return std::string(k_redacted);
  return ordered(value);
}

ordered strings(const std::vector<std::string>& list) {
  ordered out = ordered::array();
  for (const auto& s : list) out.push_back(s);
  return out;
}

ordered member_tree(const DesiredMember& m) {
  ordered j = ordered::object();
  j["name"] = m.name;
  j["slot"] = m.slot;
  j["host"] = m.host;
  j["address"] = m.address;
  j["role"] = manifests::to_string(m.role);
  j["group"] = m.group;
  j["tags"] = {{"nofailover", m.tags.nofailover}, {"noloadbalance", m.tags.noloadbalance}};
  j["configPath"] = m.config_path;
  j["service"] = m.service;
  j["patroniConfig"] = redacted(m.patroni_config);
  if (!m.files.empty()) {
    ordered files = ordered::array();
    for (const auto& f : m.files) {
      ordered file = ordered::object();
      file["path"] = f.path;
      file["content"] = f.secret ? std::string(k_redacted) : f.content;
      file["service"] = f.service;
      files.push_back(std::move(file));
    }
    j["files"] = std::move(files);
  }
  return j;
}

// spec.postgres.ssl compiled: where certificates come from, and what the given one says (its
// key's path only, never the key).
ordered ssl_tree(const DesiredSsl& ssl) {
  ordered j = ordered::object();
  j["enabled"] = ssl.enabled;
  if (!ssl.enabled) return j;
  if (ssl.generated()) {
    j["certificates"] = "generated: pgconverge's CA in the state dir signs one per member";
    j["durationSeconds"] = ssl.duration.count();
    j["renewBeforeSeconds"] = ssl.renew_before.count();
    return j;
  }
  j["certificates"] = "given";
  j["certificateFile"] = ssl.certificate_file;
  j["privateKeyFile"] = ssl.private_key_file;
  j["subject"] = "CN=" + ssl.given.subject_cn;
  j["issuer"] = "CN=" + ssl.given.issuer_cn;
  j["notAfter"] = format_utc(ssl.given.not_after);
  return j;
}

// A member's certificate: the generated one's subject and names, or the given one (shared by
// every member).
ordered member_certificate_tree(const DesiredSsl& ssl, const MemberCertificate& certificate) {
  if (!ssl.generated()) return ordered{{"subject", "CN=" + ssl.given.subject_cn}, {"notAfter", format_utc(ssl.given.not_after)}};
  return ordered{{"subject", "CN=" + certificate.subject_cn},
                 {"dnsNames", strings(certificate.dns_names)},
                 {"ipAddresses", strings(certificate.ip_addresses)},
                 {"validSeconds", ssl.duration.count()}};
}

ordered cluster_tree(const DesiredCluster& c) {
  ordered j = ordered::object();
  j["name"] = c.name;
  j["namespace"] = c.namespace_;
  j["mode"] = manifests::to_string(c.mode);
  j["role"] = manifests::to_string(c.role);
  j["instances"] = c.instances;
  if (c.sync_instances) j["syncInstances"] = *c.sync_instances;
  j["postgresVersion"] = c.postgres_version;
  j["postgresMajor"] = c.postgres_major;
  j["binDir"] = c.bin_dir;
  j["dynamicConfig"] = redacted(c.dynamic_config);
  ordered members = ordered::array();
  for (const auto& m : c.members) {
    members.push_back(member_tree(m));
    if (c.ssl.enabled) {
      // PostgreSQL and Patroni's REST API present this certificate, from these files.
      auto certificate = member_certificate_tree(c.ssl, m.certificate);
      certificate["files"] = ordered{{"certificate", m.tls.certificate}, {"privateKey", m.tls.private_key}, {"ca", m.tls.ca}};
      certificate["servedBy"] = strings({"postgresql", "patroni-restapi"});
      members.back()["certificate"] = std::move(certificate);
    }
  }
  j["ssl"] = ssl_tree(c.ssl);
  j["members"] = std::move(members);
  j["packages"] = strings(c.packages);
  if (!c.services.empty()) {
    ordered services = ordered::array();
    for (const auto& svc : c.services)
      services.push_back(ordered{{"unit", svc.unit}, {"state", svc.wanted ? "running" : "stopped"}});
    j["services"] = std::move(services);
  }
  if (!c.roles.empty()) {
    ordered roles = ordered::array();
    for (const auto& r : c.roles) {
      ordered role{{"name", r.name}, {"superuser", r.superuser}, {"memberOf", strings(r.member_of)}};
      role["password"] = r.password ? std::string(k_redacted) : std::string("none (peer)");
      roles.push_back(std::move(role));
    }
    j["roles"] = std::move(roles);
  }
  if (!c.repositories.empty()) j["repositories"] = strings(c.repositories);
  j["dcs"] = strings(c.etcd_endpoints);
  j["etcdCluster"] = c.dcs_name;
  return j;
}

}  // namespace

std::optional<RenderFormat> parse_render_format(std::string_view text) {
  if (text == "yaml") return RenderFormat::yaml;
  if (text == "json") return RenderFormat::json;
  return std::nullopt;
}

ordered render_tree(const DesiredState& state) {
  ordered clusters = ordered::array();
  for (const auto& c : state.clusters) clusters.push_back(cluster_tree(c));
  ordered doc = ordered::object();
  doc["clusters"] = std::move(clusters);
  return doc;
}

std::string render(const DesiredState& state, RenderFormat format) {
  auto tree = render_tree(state);
  if (format == RenderFormat::json) return tree.dump(2) + "\n";
  return to_ordered_yaml(tree);
}

}  // namespace pgc::reconciler
