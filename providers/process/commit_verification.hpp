#pragma once
// Verification of a commit's signature against the signers a source allows, with the OpenSSH
// and GnuPG command line tools (ssh-keygen -Y, gpgv) run through run_process.

#include <chrono>
#include <filesystem>
#include <string>

#include "providers/git/commit_signature.hpp"
#include "util/expected.hpp"

namespace pgc::providers {

// Who may sign: an OpenSSH allowed_signers file (ssh-keygen(1) ALLOWED SIGNERS), a GnuPG keyring
// in binary form (`gpg --export KEY... > keyring.gpg`), or both; an empty path allows no one of
// that kind.
struct SignerPolicy {
  std::filesystem::path ssh_allowed_signers;
  std::filesystem::path gpg_keyring;
  std::chrono::milliseconds timeout{10000};  // for each tool run
};

// Verifies sig (as the git provider extracted it) and returns who signed: the allowed_signers
// principal for SSH signatures (namespace "git", as git signs them), the primary key fingerprint
// for GPG ones. Errors name the commit by short_sha: "commit abc1234 is not signed", "commit
// abc1234 is signed by SSH key SHA256:..., which is not in <allowed_signers>", and likewise for
// GPG key ids. Signature and key expiry times are those the tools check (ssh-keygen verifies
// against the current time, not the commit's). Thread-safe.
Result<std::string> verify_commit_signature(const CommitSignature& sig, const std::string& short_sha,
                                            const SignerPolicy& policy);

}  // namespace pgc::providers
