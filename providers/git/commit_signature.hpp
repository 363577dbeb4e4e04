#pragma once
// A commit's signature as stored in the commit object; plain data shared by the git provider
// (which extracts it) and the process provider (which verifies it), no library header.

#include <string>

namespace pgc::providers {

// The armored signature ("-----BEGIN SSH SIGNATURE-----" or "-----BEGIN PGP SIGNATURE-----")
// and the exact bytes it signs (the commit object without its gpgsig header); both empty when
// the commit is unsigned.
struct CommitSignature {
  std::string signature;
  std::string signed_data;
};

}  // namespace pgc::providers
