#pragma once
// Who this process is on this machine: the host name and the process id, the parts of a name
// that tells one pgconverge instance from another (serve's default ownership instance).

#include <string>

namespace pgc {

// The host name as gethostname(2) gives it, at most 255 characters; empty when it cannot be read.
std::string local_host_name();

// This process's id.
long local_process_id();

}  // namespace pgc
