#include "util/host_identity.hpp"

#include <unistd.h>

namespace pgc {

std::string local_host_name() {
  // Zeroed and one byte short, so the name ends even when gethostname truncates it or fails.
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host;
}

long local_process_id() { return static_cast<long>(::getpid()); }

}  // namespace pgc
