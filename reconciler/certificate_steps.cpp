#include "reconciler/certificate_steps.hpp"

#include <mutex>

#include "reconciler/cluster_ca.hpp"
#include "reconciler/member_tls.hpp"

namespace pgc::reconciler {

namespace {

// One CA per cluster, however many hosts ask for it at once.
std::mutex& ca_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::chrono::sys_seconds now_seconds() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

}  // namespace

// The key first, the certificate last: PostgreSQL and Patroni read them only at a reload, which
// comes after the step, so a failure midway leaves nothing loaded that does not match; the next
// run sees the mismatch and writes all three again.
Result<void> CertificateSteps::run(const steps::WriteCertificate&, const Change& change, const Progress::Token&) {
  const auto& c = support_.cluster(change);
  const auto& m = support_.member(change);
  std::optional<providers::crypto::KeyAndCertificate> ca;
  if (c.ssl.generated()) {
    if (support_.options().state_dir.empty()) return fail("internal: no state dir for the cluster's CA");
    std::lock_guard lock(ca_mutex());
    auto ensured = ClusterCaStore(support_.options().state_dir).ensure(c.namespace_, c.name, now_seconds());
    PGC_TRY(ensured);
    ca = std::move(*ensured);
  }
  auto content = member_tls_content(c, m, ca ? &*ca : nullptr, now_seconds());
  PGC_TRY(content);
  auto s = support_.session(change.host);
  PGC_TRY(s);
  using Existing = providers::RemoteHost::ExistingDirectory;
  if (auto made = (*s)->make_directory(m.tls.dir, {"root", "postgres", 0750}, Existing::owned); !made)
    return fail(made.error().message + " (step: the TLS directory)");
  PGC_TRY((*s)->write_file(m.tls.private_key, content->private_key, providers::FileMode{"root", "postgres", 0640}));
  PGC_TRY((*s)->write_file(m.tls.ca, content->ca, providers::FileMode{"root", "postgres", 0644}));
  return (*s)->write_file(m.tls.certificate, content->certificate, providers::FileMode{"root", "postgres", 0644});
}

}  // namespace pgc::reconciler
