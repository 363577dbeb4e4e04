#include "reconciler/observe.hpp"

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>

#include "providers/ssh/file_programs.hpp"
#include "reconciler/etcd.hpp"
#include "reconciler/yaml_json.hpp"
#include "util/parallel.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

constexpr auto k_probe_timeout = std::chrono::seconds(30);

}  // namespace

const std::string& host_probe_script() {
  // Arguments come in pairs: KIND VALUE. Output: one line per item, fields separated by spaces;
  // values are pgconverge-generated paths and names without spaces, contents are base64.
  static const std::string body = R"SH(
set -u
files=""
pkgs=""
svcs=""
roles=""
while [ "$#" -ge 2 ]; do
  kind=$1; item=$2; shift 2
  case "$kind" in
    pkg) pkgs="$pkgs $item" ;;
    svc) svcs="$svcs $item" ;;
    file) files="$files $item" ;;
    dir)
      if [ -f "$item/PG_VERSION" ]; then echo "dir $item 1"; else echo "dir $item 0"; fi ;;
    fs)
      # The filesystem that holds (or would hold) a data directory: its nearest existing parent.
      p=$item; while [ ! -d "$p" ] && [ -n "$p" ]; do p=${p%/*}; done
      df -Pk "${p:-/}" 2>/dev/null | awk -v d="$item" 'NR == 2 && $4 ~ /^[0-9]+$/ {print "fs", d, $4, $2}' ;;
    repo)
      case "$item" in
        pgdg) if [ -f /etc/apt/sources.list.d/pgdg.sources ] || [ -f /etc/apt/sources.list.d/pgdg.list ]; then echo "repo pgdg 1"; else echo "repo pgdg 0"; fi ;;
      esac ;;
    role) roles="$roles $item" ;;
    etcddir)
      if [ -d "$item/member" ]; then echo "etcddir $item 1"; else echo "etcddir $item 0"; fi ;;
    etcdtls)
      # The member's TLS files (etcd_state.hpp's etcd_member_tls_files), used for an https URL.
      etcd_tls="--cacert=$item/ca.crt --cert=$item/member.crt --key=$item/member.key" ;;
    etcd)
      # The managed etcd on this host, asked on its local client URL only when etcd.service runs
      # (a stopped etcd would cost etcdctl's timeouts).
      if [ "$(systemctl is-active etcd.service 2>/dev/null | head -n1)" = active ] && command -v etcdctl >/dev/null 2>&1; then
        case "$item" in https://*) t=${etcd_tls:-} ;; *) t="" ;; esac
        # $t unquoted: its flags are separate words (paths without spaces).
        h=$(ETCDCTL_API=3 etcdctl --endpoints="$item" $t --dial-timeout=1s --command-timeout=2s endpoint health -w json 2>/dev/null | base64 -w0)
        l=$(ETCDCTL_API=3 etcdctl --endpoints="$item" $t --dial-timeout=1s --command-timeout=2s member list -w json 2>/dev/null | base64 -w0)
        echo "etcd $item 1 ${h:--} ${l:--}"
      else
        echo "etcd $item 0"
      fi ;;
  esac
done
# Every unit's state in one `systemctl show` (two calls per unit cost ~2 x 21 ms on the lab's
# stand-in): one block per unit, in the order given, blank-line separated.
# ActiveState is what is-active prints; UnitFileState what is-enabled prints, empty for a unit
# systemd does not know (is-enabled fails there), shown as "unknown" like every missing answer.
if [ -n "$svcs" ]; then
  set -f
  { systemctl show -p ActiveState -p UnitFileState $svcs 2>/dev/null; echo; } | {
    set -- $svcs
    a=; e=
    while IFS= read -r line; do
      case "$line" in
        ActiveState=*) a=${line#ActiveState=} ;;
        UnitFileState=*) e=${line#UnitFileState=} ;;
        '') if [ "$#" -gt 0 ]; then echo "svc $1 ${a:-unknown} ${e:-unknown}"; shift; fi; a=; e= ;;
      esac
    done
    for left in "$@"; do echo "svc $left unknown unknown"; done
  }
  set +f
fi
# Clusters Debian's postgresql-common manages (the 15/main a package install creates, say).
for conf in /etc/postgresql/*/*/postgresql.conf; do
  [ -f "$conf" ] || continue
  d=${conf%/postgresql.conf}; c=${d##*/}; v=${d%/*}; v=${v##*/}
  port=$(sed -n 's/^[[:space:]]*port[[:space:]]*=[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$conf" | tail -n1)
  dd=$(sed -n "s/^[[:space:]]*data_directory[[:space:]]*=[[:space:]]*'\([^' ]*\)'.*/\1/p" "$conf" | tail -n1)
  sc=$(grep -v '^[[:space:]]*#' "$d/start.conf" 2>/dev/null | tr -d '[:space:]')
  # Only the words start.conf means: a link postgres put there must not carry another file out.
  case "$sc" in auto | manual | disabled | '') ;; *) sc=other ;; esac
  on=0
  if [ -n "$dd" ] && [ -f "$dd/postmaster.pid" ]; then
    pid=$(head -n1 "$dd/postmaster.pid" 2>/dev/null)
    case "$pid" in ''|*[!0-9]*) ;; *) kill -0 "$pid" 2>/dev/null && on=1 ;; esac
  fi
  echo "pgcl $v $c ${port:-5432} $on ${sc:-auto} ${dd:--}"
done
# The OS, from os-release, with shell builtins only (this runs on every host on every plan).
# Each value ends in "-" so that none is empty; ID_LIKE's words are joined by commas; PRETTY_NAME,
# last, is the rest of the line.
if [ -r /etc/os-release ]; then
  os_id=; os_ver=; os_like=; os_code=; os_pretty=
  while IFS='=' read -r k v; do
    v=${v#[\"\']}; v=${v%[\"\']}
    case "$k" in
      ID) os_id=$v ;; VERSION_ID) os_ver=$v ;; ID_LIKE) os_like=$v ;;
      VERSION_CODENAME) os_code=$v ;; PRETTY_NAME) os_pretty=$v ;;
    esac
  done </etc/os-release
  set -f; like=; for w in $os_like; do like="$like${like:+,}$w"; done; set +f
  echo "os ${os_id%% *}- ${os_ver%% *}- $like- ${os_code%% *}- $os_pretty"
else
  echo "os - - - -"
fi
have_apt=0; command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1 && have_apt=1
have_dnf=0; command -v dnf >/dev/null 2>&1 && have_dnf=1
lists=0; for f in /var/lib/apt/lists/*_Packages*; do [ -e "$f" ] && lists=1; break; done
echo "pm $have_apt $have_dnf $lists"
# CPUs (the online list, e.g. 0-3,6) and MemTotal, with builtins.
cpus=0
if read -r online </sys/devices/system/cpu/online 2>/dev/null; then
  IFS=, ; for r in $online; do
    case "$r" in *-*) cpus=$((cpus + ${r#*-} - ${r%-*} + 1)) ;; [0-9]*) cpus=$((cpus + 1)) ;; esac
  done; unset IFS
fi
mem=0
while read -r k v _; do [ "$k" = MemTotal: ] && { mem=$v; break; }; done </proc/meminfo
echo "res $cpus ${mem:-0}"
# Roles, from the local PostgreSQL as postgres over the Unix socket (any member: pg_authid is
# replicated). No line for a role when PostgreSQL does not answer; "role NAME 0" when absent.
# psql itself, not Debian's Perl wrapper in /usr/bin (28 of its 42 ms here); any installed psql
# reads these catalogs of any supported server. The wrapper when no versioned one is found.
if [ -n "$roles" ] && [ -S /var/run/postgresql/.s.PGSQL.5432 ]; then
  psql=psql
  for b in /usr/lib/postgresql/*/bin/psql; do [ -x "$b" ] && psql=$b; done
  if rows=$(cd / && printf '%s\n' "SELECT r.rolname, CASE WHEN r.rolsuper THEN 1 ELSE 0 END, coalesce((SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), '-'), CASE WHEN coalesce(has_function_privilege(r.oid, to_regprocedure('pgconverge.pgbouncer_lookup(text)'), 'EXECUTE'), false) THEN 1 ELSE 0 END, coalesce(r.rolpassword, '-') FROM pg_authid r WHERE r.rolname = ANY (string_to_array(:'names', ' '));" |
      PGCONNECT_TIMEOUT=3 timeout 5 runuser -u postgres -- "$psql" -h /var/run/postgresql -p 5432 -d postgres -XAtq -F ' ' -v ON_ERROR_STOP=1 -v names="$roles" 2>/dev/null); then
    for r in $roles; do
      line=$(printf '%s\n' "$rows" | awk -v r="$r" '$1 == r {print; exit}')
      if [ -n "$line" ]; then echo "role $line" | awk '{print $1, $2, 1, $3, $4, $5, $6}'; else echo "role $r 0"; fi
    done
  fi
fi
# All packages in one dpkg-query (one call per package cost ~14 ms of CPU each on the lab).
if [ -n "$pkgs" ]; then
  set -f
  installed=" $(dpkg-query -W -f='${Package} ${Status}\n' $pkgs 2>/dev/null |
    awk '$2 == "install" && $3 == "ok" && $4 == "installed" {printf "%s ", $1}')"
  missing=""
  for p in $pkgs; do
    case "$installed" in *" $p "*) echo "pkg $p 1" ;; *) echo "pkg $p 0"; missing="$missing $p" ;; esac
  done
  # What apt would install for the missing ones (no line: apt knows no such package).
  if [ -n "$missing" ] && [ "$have_apt" = 1 ]; then
    LC_ALL=C apt-cache policy $missing 2>/dev/null |
      awk '/^[^ ]/ {p=$1; sub(/:$/, "", p)} /^  Candidate:/ {print "cand", p, $2}'
  fi
  set +f
fi
# The files pgconverge manages, read by one Perl program that follows no link another user
# could swap (providers/ssh/file_programs.hpp): "file PATH 1 BASE64" or "file PATH 0".
if [ -n "$files" ]; then
  set -f
  perl -e "$probe_files" -- $files 2>/dev/null
  set +f
fi
echo "end"
)SH";
  static const std::string script = "probe_files=" + shell_quote(providers::probe_files_program()) + "\n" + body;
  return script;
}

std::vector<std::string> host_probe_args(const HostProbe& probe) {
  std::vector<std::string> args;
  auto add = [&](const char* kind, const std::vector<std::string>& items) {
    for (const auto& item : items) {
      args.emplace_back(kind);
      args.push_back(item);
    }
  };
  add("pkg", probe.packages);
  add("svc", probe.services);
  add("file", probe.files);
  add("dir", probe.data_dirs);
  add("fs", probe.volume_dirs);
  add("role", probe.roles);
  return args;
}

Result<ObservedHost> parse_host_probe(const std::string& host_name, const std::string& output) {
  ObservedHost host;
  host.name = host_name;
  host.reachable = true;
  bool ended = false;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    auto f = split(trim(line), ' ');
    if (f.empty() || f[0].empty()) continue;
    if (f[0] == "end") {
      ended = true;
    } else if (f[0] == "pkg" && f.size() == 3) {
      host.packages[f[1]] = f[2] == "1";
    } else if (f[0] == "svc" && f.size() == 4) {
      host.services[f[1]] = f[2];
      host.service_enabled[f[1]] = f[3];
    } else if (f[0] == "file" && (f.size() == 3 || f.size() == 4)) {
      if (f[2] == "1") host.files[f[1]] = probe_base64_decode(f.size() == 4 ? f[3] : "");
      else host.files[f[1]] = std::nullopt;
    } else if (f[0] == "dir" && f.size() == 3) {
      host.data_dirs[f[1]] = f[2] == "1";
    } else if (f[0] == "repo" && f.size() == 3) {
      host.repositories[f[1]] = f[2] == "1";
    } else if (f[0] == "os" && f.size() >= 5) {
      // Every value ends in "-" so that none is empty; ID_LIKE's spaces came as commas;
      // PRETTY_NAME is the rest of the line.
      auto value = [](const std::string& v) { return v.empty() ? v : v.substr(0, v.size() - 1); };
      host.os.id = value(f[1]);
      host.os.version_id = value(f[2]);
      host.os.id_like = value(f[3]);
      std::replace(host.os.id_like.begin(), host.os.id_like.end(), ',', ' ');
      host.os.codename = value(f[4]);
      host.os.pretty_name = trim(join(std::vector<std::string>(f.begin() + 5, f.end()), " "));
    } else if (f[0] == "pm" && f.size() == 4) {
      host.has_apt = f[1] == "1";
      host.has_dnf = f[2] == "1";
      host.apt_lists = f[3] == "1";
    } else if (f[0] == "res" && f.size() == 3) {
      host.cpus = std::atoi(f[1].c_str());
      host.memory_bytes = std::atoll(f[2].c_str()) * 1024;
    } else if (f[0] == "fs" && f.size() == 4) {
      host.filesystems[f[1]] = {std::atoll(f[2].c_str()) * 1024, std::atoll(f[3].c_str()) * 1024};
    } else if (f[0] == "cand" && f.size() == 3) {
      host.candidates[f[1]] = f[2] == "(none)" ? "" : f[2];
    } else if (f[0] == "pgcl" && f.size() == 7) {
      DebianCluster c;
      c.version = f[1];
      c.name = f[2];
      c.port = std::atoi(f[3].c_str());
      c.online = f[4] == "1";
      c.start_conf = f[5];
      c.data_dir = f[6] == "-" ? "" : f[6];
      host.debian_clusters.push_back(std::move(c));
    } else if (f[0] == "role" && f.size() == 3 && f[2] == "0") {
      host.roles[f[1]] = ObservedRole{};
    } else if (f[0] == "role" && f.size() == 7 && f[2] == "1") {
      // role NAME 1 SUPERUSER GROUPS LOOKUP PASSWORD
      ObservedRole role;
      role.exists = true;
      role.superuser = f[3] == "1";
      if (f[4] != "-") role.member_of = split(f[4], ',');
      role.lookup = f[5] == "1";
      if (f[6] != "-") role.password = f[6];
      host.roles[f[1]] = std::move(role);
    } else if (auto etcd = parse_etcd_probe_line(f, host); !etcd) {
      return std::unexpected(etcd.error());
    } else if (*etcd) {
      continue;
    } else {
      return fail("host " + host_name + ": probe: unexpected output line: " + line.substr(0, 80));
    }
  }
  if (!ended) return fail("host " + host_name + ": probe: output ended early");
  return host;
}

HostProbe probe_for(const DesiredState& desired) {
  std::set<std::string> packages, files, services, dirs, roles, volume_dirs;
  for (const auto& cluster : desired.clusters) {
    packages.insert(cluster.packages.begin(), cluster.packages.end());
    for (const auto& service : cluster.services) services.insert(service.unit);
    for (const auto& role : cluster.roles) roles.insert(role.name);
    for (const auto& member : cluster.members) {
      files.insert(member.config_path);
      if (!member.tls.dir.empty())
        for (const auto* path : {&member.tls.certificate, &member.tls.private_key, &member.tls.ca}) files.insert(*path);
      for (const auto& file : member.files) files.insert(file.path);
      services.insert(member.service);
      if (member.patroni_config.contains("postgresql")) {
        dirs.insert(member.data_dir);
        if (cluster.volume_bytes) volume_dirs.insert(member.data_dir);
      }
    }
  }
  dirs.erase("");
  volume_dirs.erase("");
  for (const auto& etcd : desired.etcds) {
    packages.insert(etcd.packages.begin(), etcd.packages.end());
    files.insert(etcd.config_path);
    services.insert(etcd.service);
    if (!etcd.tls) continue;
    for (const auto& f : {etcd.member_tls(), etcd.patroni_tls()})
      for (const auto* path : {&f.ca, &f.certificate, &f.private_key}) files.insert(*path);
  }
  for (const auto& etcd : desired.external_etcds) {
    auto f = etcd_patroni_tls_files(etcd.name);
    for (const auto* path : {&f.ca, &f.certificate, &f.private_key}) files.insert(*path);
  }
  return HostProbe{{packages.begin(), packages.end()}, {files.begin(), files.end()},
                   {services.begin(), services.end()}, {dirs.begin(), dirs.end()},
                   {roles.begin(), roles.end()}, {volume_dirs.begin(), volume_dirs.end()}};
}

Result<providers::RemoteHost*> Sessions::get(const manifests::Host& host) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = open_.find(host.metadata.name); it != open_.end()) return it->second.get();
    if (auto it = failed_.find(host.metadata.name); it != failed_.end()) return std::unexpected(it->second);
  }
  auto connected = world_.connect(host);
  std::lock_guard lock(mutex_);
  if (!connected) {
    failed_[host.metadata.name] = connected.error();
    return std::unexpected(connected.error());
  }
  auto* raw = connected->get();
  open_[host.metadata.name] = std::move(*connected);
  return raw;
}

providers::PatroniEndpoint patroni_endpoint(const std::string& address, const ClusterSecrets* secrets) {
  providers::PatroniEndpoint endpoint;
  endpoint.address = address;
  endpoint.port = 8008;
  if (secrets && secrets->values.contains(SecretKind::restapi)) {
    endpoint.username = "pgconverge";
    endpoint.password = secrets->get(SecretKind::restapi);
  }
  endpoint.timeout = std::chrono::milliseconds(3000);
  if (secrets && !secrets->rest_ca_pem.empty())
    endpoint.tls = providers::PatroniTls{.ca_pem = secrets->rest_ca_pem, .server_name = address, .prefer = secrets->rest_tls};
  return endpoint;
}

namespace {

ObservedMember parse_member(const nlohmann::json& m) {
  ObservedMember member;
  member.name = json_string(m, "name");
  member.host = json_string(m, "host");
  member.port = static_cast<int>(json_integer(m, "port").value_or(0));
  member.role = json_string(m, "role");
  if (member.role == "master" || member.role == "primary") member.role = "leader";
  member.state = json_string(m, "state");
  if (auto t = json_integer(m, "timeline")) member.timeline = static_cast<long>(*t);
  if (auto lag = json_integer(m, "lag")) member.lag_bytes = *lag;
  if (m.contains("tags") && m["tags"].is_object()) member.tags = m["tags"];
  member.pending_restart = json_bool(m, "pending_restart", false);
  return member;
}

// When GET /cluster failed everywhere: does a member still answer GET /patroni? Then Patroni runs
// but cannot read its DCS; say which DCS and since when (Patroni's dcs_last_seen, epoch seconds).
std::string dcs_unreachable(const DesiredCluster& cluster, const std::vector<std::string>& addresses,
                            const ClusterSecrets* secrets, World& world, const std::string& cluster_error) {
  for (const auto& address : addresses) {
    auto info = world.patroni(patroni_endpoint(address, secrets))->patroni();
    if (!info || !info->is_object()) continue;
    std::string dcs = "etcd \"" + cluster.dcs_name + "\" (" + join(cluster.etcd_endpoints, ", ") + ")";
    std::string seen;
    if (auto it = info->find("dcs_last_seen"); it != info->end() && it->is_number()) {
      auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
      long long age = now.count() - it->get<long long>();
      seen = age >= 0 ? "; Patroni last reached it " + std::to_string(age) + "s ago" : "";
    }
    return "DCS " + dcs + " unreachable: Patroni on " + address + " answers GET /patroni but " + cluster_error + seen;
  }
  return "";
}

// GET /cluster (and GET /config when with_config) from the first member that answers both; when
// none does, why (ObservedCluster::error, permanent, dcs_error).
ObservedCluster observe_api(const DesiredCluster& cluster, const std::vector<std::string>& addresses,
                            const ClusterSecrets* secrets, World& world, bool with_config) {
  ObservedCluster observed;
  observed.name = cluster.name;
  std::vector<Error> errors;
  for (const auto& address : addresses) {
    auto client = world.patroni(patroni_endpoint(address, secrets));
    Result<nlohmann::json> body = fail("not asked"), cfg = fail("not asked");
    if (with_config) {
      // Both at once: over TLS each answer of Patroni's waits ~40 ms for an ACK (its header and
      // body are two writes; docs/performance.md), so the two waits overlap instead of adding up.
      parallel_for(2, 2, [&](std::size_t i) {
        if (i == 0)
          body = client->cluster();
        else
          cfg = client->config();
      });
    } else {
      body = client->cluster();
    }
    if (!body) {
      errors.push_back(body.error());
      continue;
    }
    if (with_config) {
      if (!cfg) {
        errors.push_back(cfg.error());
        continue;
      }
      observed.dcs_config = *cfg;
    }
    observed.api_reachable = true;
    observed.paused = json_bool(*body, "pause", false);
    if (auto members = body->find("members"); members != body->end() && members->is_array())
      for (const auto& m : *members)
        if (m.is_object()) observed.members.push_back(parse_member(m));
    break;
  }
  if (!observed.api_reachable) {
    observed.error = errors.empty() ? "no member address to ask" : errors.front().message;
    // Permanent only when every member refused so: one that did not may answer the next time.
    bool all_permanent = !errors.empty() && std::all_of(errors.begin(), errors.end(),
                                                         [](const Error& e) { return e.is_permanent(); });
    if (all_permanent) observed.permanent = errors.front().permanent;
    observed.dcs_error = dcs_unreachable(cluster, addresses, secrets, world, observed.error);
  }
  return observed;
}

}  // namespace

ObservedCluster observe_members(const DesiredCluster& cluster, const std::vector<std::string>& addresses,
                                const ClusterSecrets* secrets, World& world) {
  auto observed = observe_api(cluster, addresses, secrets, world, false);
  for (const auto& m : observed.members) observed.member_tags[m.name] = m.tags;
  return observed;
}

ObservedCluster observe_cluster(const DesiredCluster& cluster, const std::vector<std::string>& addresses,
                                const ClusterSecrets* secrets, World& world, bool with_postgres,
                                std::size_t workers) {
  auto observed = observe_api(cluster, addresses, secrets, world, true);
  if (!observed.api_reachable) return observed;
  // Tags as each member reports them (GET /cluster omits empty tags).
  for (const auto& m : observed.members) observed.member_tags[m.name] = m.tags;

  if (with_postgres && secrets) {
    std::vector<std::pair<std::string, std::string>> targets;  // member → address
    for (const auto& m : observed.members)
      if (!m.host.empty()) targets.emplace_back(m.name, m.host);
    std::vector<ObservedPostgres> results(targets.size());
    parallel_for(targets.size(), workers, [&](std::size_t i) {
      providers::PgConnection conn;
      conn.host = targets[i].second;
      conn.user = "postgres";
      conn.password = secrets->get(SecretKind::superuser);
      conn.connect_timeout = std::chrono::milliseconds(3000);
      conn.statement_timeout = std::chrono::milliseconds(3000);
      auto pg = world.postgres(conn);
      auto& out = results[i];
      if (!pg) {
        out.error = pg.error().message;
        out.permanent = pg.error().permanent;
        return;
      }
      out.reachable = true;
      out.in_recovery = pg->in_recovery;
      out.server_version = pg->server_version;
      out.synchronous_standby_names = pg->synchronous_standby_names;
      for (const auto& row : pg->replication)
        if (row.state == "streaming") out.sync_states.emplace_back(row.application_name, row.sync_state);
      out.pending_restart = pg->pending_restart;
      out.system_identifier = pg->system_identifier;
    });
    for (std::size_t i = 0; i < targets.size(); ++i) observed.postgres[targets[i].first] = results[i];
    // The cluster's identity from its leader's PostgreSQL, in the same round trip as the rest
    // (GET /patroni would be one more REST request per observation, each a TLS handshake).
    if (const auto* leader = observed.leader(); leader && observed.postgres.contains(leader->name))
      observed.system_identifier = observed.postgres.at(leader->name).system_identifier;
  }
  return observed;
}

std::map<std::string, ObservedHost> observe_hosts(const manifests::ManifestSet& manifests, const DesiredState& desired,
                                                  Sessions& sessions, const ObserveOptions& options) {
  auto probe = probe_for(desired);
  auto args = host_probe_args(probe);
  std::vector<ObservedHost> hosts(manifests.hosts.size());
  parallel_for(manifests.hosts.size(), options.workers, [&](std::size_t i) {
    const auto& host = manifests.hosts[i];
    auto& out = hosts[i];
    out.name = host.metadata.name;
    auto session = sessions.get(host);
    if (!session) {
      out.error = session.error().message;
      return;
    }
    auto host_args = args;
    auto etcd_args = etcd_probe_args(desired, host.metadata.name);  // this host's etcd member, if any
    host_args.insert(host_args.end(), etcd_args.begin(), etcd_args.end());
    auto result = (*session)->run_script(host_probe_script(), host_args, k_probe_timeout);
    if (!result) {
      out.error = result.error().message;
      return;
    }
    if (result->exit_status != 0) {
      out.error = "host " + (*session)->describe() + ": probe exited with status " +
                  std::to_string(result->exit_status) + ": " + trim(result->err).substr(0, 200);
      return;
    }
    auto parsed = parse_host_probe(host.metadata.name, result->out);
    if (!parsed) {
      out.error = parsed.error().message;
      return;
    }
    out = std::move(*parsed);
  });
  std::map<std::string, ObservedHost> out;
  for (auto& h : hosts) out[h.name] = std::move(h);
  return out;
}

std::map<std::string, ObservedCluster> observe_clusters(const manifests::ManifestSet& manifests,
                                                        const DesiredState& desired,
                                                        const std::map<std::string, ObservedHost>& hosts,
                                                        const std::map<std::string, ClusterSecrets>& secrets,
                                                        World& world, const ObserveOptions& options) {
  std::vector<ObservedCluster> clusters(desired.clusters.size());
  parallel_for(desired.clusters.size(), options.workers, [&](std::size_t i) {
    const auto& cluster = desired.clusters[i];
    std::vector<std::string> addresses;
    for (const auto& member : cluster.members) addresses.push_back(member.address);
    // Hosts that hold this cluster's config without a declared member (scaled down or moved).
    if (!cluster.members.empty()) {
      const auto& path = cluster.members.front().config_path;
      for (const auto& host : manifests.hosts) {
        auto oh = hosts.find(host.metadata.name);
        if (oh == hosts.end()) continue;
        auto f = oh->second.files.find(path);
        if (f != oh->second.files.end() && f->second &&
            std::find(addresses.begin(), addresses.end(), host.address) == addresses.end())
          addresses.push_back(host.address);
      }
    }
    auto sit = secrets.find(cluster.name);
    clusters[i] = observe_cluster(cluster, addresses, sit == secrets.end() ? nullptr : &sit->second, world,
                                  true, options.workers);
  });
  std::map<std::string, ObservedCluster> out;
  for (auto& c : clusters) out[c.name] = std::move(c);
  return out;
}

PlacementHistory placement_from(const DesiredState& desired, const std::map<std::string, ObservedHost>& hosts) {
  PlacementHistory history;
  for (const auto& cluster : desired.clusters) {
    if (cluster.members.empty()) continue;
    const auto& path = cluster.members.front().config_path;
    std::string prefix = cluster.name + "-";
    for (const auto& [host_name, host] : hosts) {
      auto f = host.files.find(path);
      if (f == host.files.end() || !f->second) continue;
      auto config = yaml_to_json(*f->second);
      if (!config || !config->is_object() || json_string(*config, "scope") != cluster.name) continue;
      std::string name = json_string(*config, "name");
      if (!starts_with(name, prefix)) continue;
      try {
        history[cluster.name][std::stoi(name.substr(prefix.size()))] = host_name;
      } catch (...) {
      }
    }
  }
  return history;
}

}  // namespace pgc::reconciler
