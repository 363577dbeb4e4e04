// Host preparation's steps on a host: repository, packages (and their dry run), Debian's clusters.

#include "reconciler/host_prep_steps.hpp"

#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

constexpr auto k_install_timeout = std::chrono::minutes(15);

// A failed package-manager command, in its own words: apt's "E:" lines, else the end of stderr.
std::string package_manager_error(const std::string& host, const std::string& what, const providers::CommandResult& r) {
  std::vector<std::string> errors;
  for (const auto& line : split(r.err + "\n" + r.out, '\n'))
    if (line.starts_with("E: ") || line.starts_with("pgconverge: ")) errors.push_back(trim(line));
  std::string text = errors.empty() ? trim(r.err) : join(errors, "; ");
  if (text.size() > 600) text = "…" + text.substr(text.size() - 600);
  return "host " + host + ": " + what + " exited with status " + std::to_string(r.exit_status) + ": " + text;
}

// The arguments of the apt scripts: "1" to apt-get update first (else "0"), then the packages.
std::vector<std::string> package_args(const steps::InstallPackages& step) {
  std::vector<std::string> args{step.update ? "1" : "0"};
  args.insert(args.end(), step.packages.begin(), step.packages.end());
  return args;
}

// Runs an apt script with the step's package arguments; a failure in apt's own words.
Result<void> run_apt(providers::RemoteHost& host, const std::string& script, const steps::InstallPackages& step) {
  auto args = package_args(step);
  auto r = host.run_script(script, args, k_install_timeout);
  PGC_TRY(r);
  if (r->exit_status != 0)
    return fail(package_manager_error(host.describe(),
                                      "apt-get install " + join(std::vector<std::string>(args.begin() + 1, args.end()), " "),
                                      *r));
  return {};
}

}  // namespace

Result<void> HostPrepSteps::run(const steps::ConfigureRepository& step, const Change& change, const Progress::Token&) {
  auto s = support_.session(change.host);
  PGC_TRY(s);
  if (step.repository != manifests::k_repository_pgdg) return fail("host " + (*s)->describe() + ": unknown package repository");
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
  PGC_TRY(r);
  if (r->exit_status != 0) return fail(package_manager_error((*s)->describe(), "adding the pgdg repository", *r));
  return {};
}

// Before anything is installed anywhere: apt-get update where planned, then a simulated install
// (apt resolves every package and dependency, changes nothing). A package no source has fails
// here, in apt's own words, on every host at once.
Result<void> HostPrepSteps::check(const steps::InstallPackages& step, const Change& change) {
  auto s = support_.session(change.host);
  PGC_TRY(s);
  static const std::string script = R"SH(
set -eu
export DEBIAN_FRONTEND=noninteractive
update=$1; shift
if [ "$update" = 1 ]; then apt-get -q -o DPkg::Lock::Timeout=300 update; fi
apt-get -s -q -o DPkg::Lock::Timeout=300 install --no-install-recommends "$@" >/dev/null
)SH";
  return run_apt(**s, script, step);
}

Result<void> HostPrepSteps::run(const steps::InstallPackages& step, const Change& change, const Progress::Token&) {
  auto s = support_.session(change.host);
  PGC_TRY(s);
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

Result<void> HostPrepSteps::run(const steps::StopDebianCluster& step, const Change& change, const Progress::Token&) {
  auto s = support_.session(change.host);
  PGC_TRY(s);
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
  PGC_TRY(r);
  if (r->exit_status != 0)
    return fail("host " + (*s)->describe() + ": stopping Debian's cluster " + version + "/" + name + ": " + trim(r->err));
  return (*s)->write_file("/etc/postgresql/" + version + "/" + name + "/start.conf",
                          "# pgconverge: disabled so that Patroni alone runs PostgreSQL on this host.\n"
                          "# The cluster's data directory is kept as it was.\n"
                          "disabled\n",
                          providers::FileMode{"postgres", "postgres", 0644});
}

}  // namespace pgc::reconciler
