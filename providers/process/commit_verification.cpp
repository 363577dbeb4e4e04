// Commit signatures are checked the way `git verify-commit` does it: ssh-keygen -Y
// find-principals / verify with namespace "git" for SSH, gpgv with a fixed keyring for GPG. The
// signature (and, for gpgv, the signed data) goes to files in a private temp directory.

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>

#include "providers/process/commit_verification.hpp"
#include "providers/process/process.hpp"
#include "util/strings.hpp"

namespace pgc::providers {
namespace {

namespace fs = std::filesystem;

// A private directory for the signature files, removed at the end.
class TempDir {
 public:
  static Result<TempDir> create() {
    std::string pattern = (fs::temp_directory_path() / "pgc-verify.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) return fail(std::string("creating a temp dir: ") + std::strerror(errno));
    return TempDir(pattern);
  }
  TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  explicit TempDir(fs::path path) : path_(std::move(path)) {}
  fs::path path_;
};

Result<fs::path> write_temp(const TempDir& dir, const std::string& name, const std::string& content) {
  fs::path path = dir.path() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) return fail("writing " + path.string());
  return path;
}

// The first line of a tool's output, for messages.
std::string first_line(const std::string& text) {
  std::string line = trim(text);
  if (auto newline = line.find('\n'); newline != std::string::npos) line.resize(newline);
  return line.empty() ? "no output" : line;
}

// "SHA256:..." from ssh-keygen's "Good "git" signature with ED25519 key SHA256:...".
std::optional<std::string> ssh_fingerprint(const std::string& text) {
  auto at = text.find("SHA256:");
  if (at == std::string::npos) return std::nullopt;
  auto end = text.find_first_of(" \t\r\n", at);
  return text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

Result<std::string> verify_ssh(const CommitSignature& sig, const std::string& commit, const SignerPolicy& policy) {
  if (policy.ssh_allowed_signers.empty())
    return fail(commit + " has an SSH signature but no SSH allowed signers file is configured");
  const std::string allowed = fs::absolute(policy.ssh_allowed_signers).string();
  if (access(allowed.c_str(), R_OK) != 0)
    return fail(commit + ": cannot read the SSH allowed signers file " + allowed + ": " + std::strerror(errno));
  auto dir = TempDir::create();
  if (!dir) return std::unexpected(dir.error().with_context(commit));
  auto sig_file = write_temp(*dir, "signature", sig.signature);
  if (!sig_file) return std::unexpected(sig_file.error().with_context(commit));

  auto found = run_process({"ssh-keygen", "-Y", "find-principals", "-f", allowed, "-s", sig_file->string()}, "",
                           policy.timeout);
  if (!found) return std::unexpected(found.error().with_context(commit));
  std::string principal = trim(found->out);
  if (auto newline = principal.find('\n'); newline != std::string::npos) principal.resize(newline);
  if (found->exit_code != 0 || principal.empty()) {
    auto checked = run_process({"ssh-keygen", "-Y", "check-novalidate", "-n", "git", "-s", sig_file->string()},
                               sig.signed_data, policy.timeout);
    if (!checked) return std::unexpected(checked.error().with_context(commit));
    if (checked->exit_code != 0)
      return fail(commit + ": SSH signature does not verify: " + first_line(checked->err + checked->out));
    auto key = ssh_fingerprint(checked->out + checked->err);
    return fail(commit + " is signed by " + (key ? "SSH key " + *key : std::string("an SSH key")) +
                ", which is not in " + allowed);
  }
  auto verified = run_process({"ssh-keygen", "-Y", "verify", "-f", allowed, "-I", principal, "-n", "git", "-s",
                               sig_file->string()},
                              sig.signed_data, policy.timeout);
  if (!verified) return std::unexpected(verified.error().with_context(commit));
  if (verified->exit_code != 0)
    return fail(commit + ": SSH signature of " + principal + " does not verify: " +
                first_line(verified->err + verified->out));
  return principal;
}

// The words after "[GNUPG:] <keyword>" in gpgv's status output, if that line is there.
std::optional<std::vector<std::string>> status_line(const std::string& status, const std::string& keyword) {
  for (const auto& line : split(status, '\n')) {
    auto words = split(trim(line), ' ');
    if (words.size() >= 2 && words[0] == "[GNUPG:]" && words[1] == keyword)
      return std::vector<std::string>(words.begin() + 2, words.end());
  }
  return std::nullopt;
}

Result<std::string> verify_gpg(const CommitSignature& sig, const std::string& commit, const SignerPolicy& policy) {
  if (policy.gpg_keyring.empty()) return fail(commit + " has a GPG signature but no GPG keyring is configured");
  const std::string keyring = fs::absolute(policy.gpg_keyring).string();
  if (access(keyring.c_str(), R_OK) != 0)
    return fail(commit + ": cannot read the GPG keyring " + keyring + ": " + std::strerror(errno));
  auto dir = TempDir::create();
  if (!dir) return std::unexpected(dir.error().with_context(commit));
  auto sig_file = write_temp(*dir, "signature.asc", sig.signature);
  if (!sig_file) return std::unexpected(sig_file.error().with_context(commit));
  auto data_file = write_temp(*dir, "commit", sig.signed_data);
  if (!data_file) return std::unexpected(data_file.error().with_context(commit));

  // An empty home of our own: gpgv reads nothing but the keyring we name.
  auto ran = run_process({"gpgv", "--homedir", dir->path().string(), "--status-fd", "1", "--keyring", keyring,
                          sig_file->string(), data_file->string()},
                         "", policy.timeout);
  if (!ran) return std::unexpected(ran.error().with_context(commit));
  auto valid = status_line(ran->out, "VALIDSIG");
  if (ran->exit_code == 0 && status_line(ran->out, "GOODSIG") && valid && !valid->empty())
    return valid->size() >= 10 ? (*valid)[9] : (*valid)[0];  // the primary key's fingerprint
  if (auto missing = status_line(ran->out, "NO_PUBKEY"); missing && !missing->empty())
    return fail(commit + " is signed by GPG key " + (*missing)[0] + ", which is not in " + keyring);
  for (const char* refused : {"EXPKEYSIG", "REVKEYSIG", "EXPSIG", "BADSIG"})
    if (auto line = status_line(ran->out, refused); line && !line->empty())
      return fail(commit + ": GPG signature by key " + (*line)[0] + " does not verify (" + refused + ")");
  return fail(commit + ": GPG signature does not verify: " + first_line(ran->err));
}

}  // namespace

Result<std::string> verify_commit_signature(const CommitSignature& sig, const std::string& short_sha,
                                            const SignerPolicy& policy) {
  const std::string commit = "commit " + short_sha;
  if (sig.signature.empty()) return fail(commit + " is not signed");
  if (sig.signature.starts_with("-----BEGIN SSH SIGNATURE-----")) return verify_ssh(sig, commit, policy);
  if (sig.signature.starts_with("-----BEGIN PGP SIGNATURE-----")) return verify_gpg(sig, commit, policy);
  return fail(commit + " has a signature of an unknown kind (neither SSH nor GPG)");
}

}  // namespace pgc::providers
