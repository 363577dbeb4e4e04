// verify_commit_signature on commits signed by the git CLI with throwaway SSH and GPG keys,
// their signatures extracted by sync_git_source.

#include <catch2/catch.hpp>
#include <chrono>

#include "providers/git/git_source.hpp"
#include "providers/process/commit_verification.hpp"
#include "tests/integration/git/test_support.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using pgc::providers::SignerPolicy;
using pgc::providers::verify_commit_signature;
using namespace pgc::test;

namespace {

std::string ssh_fingerprint(const fs::path& public_key) {
  return pgc::split(sh("ssh-keygen -E sha256 -lf " + q(public_key)), ' ').at(1);
}

// A GnuPG home in a temp dir with its own agent, stopped at the end.
struct GpgHome {
  pgc::test::TempDir temp;
  fs::path home = temp.path() / "gnupg";
  GpgHome() {
    fs::create_directories(home);
    fs::permissions(home, fs::perms::owner_all);
  }
  GpgHome(const GpgHome&) = delete;
  GpgHome& operator=(const GpgHome&) = delete;
  ~GpgHome() {
    try {
      sh("gpgconf --homedir " + q(home) + " --kill gpg-agent");
    } catch (const std::exception&) {
    }
  }
  std::string gpg(const std::string& args) const {
    return sh("gpg --homedir " + q(home) + " --batch --quiet " + args);
  }
  // Makes an ed25519 signing key without a passphrase; returns its fingerprint.
  [[nodiscard]] std::string new_key(const std::string& uid) const {
    gpg("--passphrase '' --quick-gen-key " + pgc::shell_quote(uid) + " ed25519 sign never");
    for (const auto& line : pgc::split(gpg("--with-colons --list-keys " + pgc::shell_quote(uid)), '\n')) {
      auto fields = pgc::split(line, ':');
      if (fields.size() > 9 && fields[0] == "fpr") return fields[9];
    }
    throw std::runtime_error("no fingerprint for " + uid);
  }
};

}  // namespace

TEST_CASE("verify: an SSH-signed commit is verified against allowed_signers", "[verify][integration]") {
  RepoFixture repo;
  const fs::path key = repo.temp.path() / "signer";
  const fs::path stranger = repo.temp.path() / "stranger";
  sh("ssh-keygen -q -t ed25519 -N '' -C signer -f " + q(key));
  sh("ssh-keygen -q -t ed25519 -N '' -C stranger -f " + q(stranger));
  const fs::path allowed = repo.temp.path() / "allowed_signers";
  spit(allowed, "pat@example.com namespaces=\"git\" " + slurp(key.string() + ".pub"));
  const std::string signing = "-c gpg.format=ssh -c user.signingkey=" + q(key);

  repo.git(signing + " commit -q -S --allow-empty -m signed");
  repo.push();
  auto signed_sync = sync_or_fail(options_for(repo));
  CHECK(pgc::starts_with(signed_sync.signature.signature, "-----BEGIN SSH SIGNATURE-----"));
  CHECK(pgc::starts_with(signed_sync.signature.signed_data, "tree "));
  auto who = verify_commit_signature(signed_sync.signature, signed_sync.revision.short_sha, {allowed, {}});
  REQUIRE(who);
  CHECK(*who == "pat@example.com");

  // The signer's key is not in allowed_signers.
  repo.git("-c gpg.format=ssh -c user.signingkey=" + q(stranger) + " commit -q -S --allow-empty -m stranger");
  repo.push();
  auto stranger_sync = sync_or_fail(options_for(repo));
  auto refused = verify_commit_signature(stranger_sync.signature, stranger_sync.revision.short_sha, {allowed, {}});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message == "commit " + stranger_sync.revision.short_sha + " is signed by SSH key " +
                                       ssh_fingerprint(stranger.string() + ".pub") + ", which is not in " +
                                       allowed.string());

  // A tampered commit (signed data changed) does not verify.
  auto tampered = signed_sync.signature;
  tampered.signed_data += "extra line\n";
  auto bad = verify_commit_signature(tampered, signed_sync.revision.short_sha, {allowed, {}});
  REQUIRE_FALSE(bad);
  CHECK(pgc::starts_with(bad.error().message, "commit " + signed_sync.revision.short_sha +
                                                  ": SSH signature of pat@example.com does not verify: "));

  // No allowed_signers configured.
  auto unconfigured = verify_commit_signature(signed_sync.signature, "abc1234", {});
  REQUIRE_FALSE(unconfigured);
  CHECK(unconfigured.error().message ==
        "commit abc1234 has an SSH signature but no SSH allowed signers file is configured");

  // Unsigned.
  repo.commit({{"a.yaml", "1\n"}}, "unsigned");
  repo.push();
  auto unsigned_sync = sync_or_fail(options_for(repo));
  CHECK(unsigned_sync.signature.signature.empty());
  auto not_signed = verify_commit_signature(unsigned_sync.signature, unsigned_sync.revision.short_sha, {allowed, {}});
  REQUIRE_FALSE(not_signed);
  CHECK(not_signed.error().message == "commit " + unsigned_sync.revision.short_sha + " is not signed");
}

TEST_CASE("verify: a GPG-signed commit is verified with a keyring and refused with another", "[verify][integration]") {
  RepoFixture repo;
  GpgHome gpg;
  const std::string signer = gpg.new_key("Pat Tester <pat@example.com>");
  const std::string other = gpg.new_key("Someone Else <else@example.com>");
  const fs::path keyring = repo.temp.path() / "signers.gpg";
  const fs::path other_keyring = repo.temp.path() / "others.gpg";
  gpg.gpg("--export " + signer + " > " + q(keyring));
  gpg.gpg("--export " + other + " > " + q(other_keyring));

  sh("GNUPGHOME=" + q(gpg.home) + " git -C " + q(repo.work) +
     " -c user.name='Pat Tester' -c user.email=pat@example.com -c gpg.program=gpg -c user.signingkey=" + signer +
     " commit -q -S --allow-empty -m gpg-signed");
  repo.push();
  auto sync = sync_or_fail(options_for(repo));
  CHECK(pgc::starts_with(sync.signature.signature, "-----BEGIN PGP SIGNATURE-----"));
  auto who = verify_commit_signature(sync.signature, sync.revision.short_sha, {{}, keyring});
  REQUIRE(who);
  CHECK(*who == signer);

  auto refused = verify_commit_signature(sync.signature, sync.revision.short_sha, {{}, other_keyring});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message == "commit " + sync.revision.short_sha + " is signed by GPG key " +
                                       signer.substr(signer.size() - 16) + ", which is not in " +
                                       other_keyring.string());

  auto unconfigured = verify_commit_signature(sync.signature, sync.revision.short_sha, {});
  REQUIRE_FALSE(unconfigured);
  CHECK(unconfigured.error().message ==
        "commit " + sync.revision.short_sha + " has a GPG signature but no GPG keyring is configured");
}
