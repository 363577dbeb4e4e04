#include <catch2/catch.hpp>

#include <unistd.h>

#include <string>

#include "util/host_identity.hpp"

TEST_CASE("host identity: the host name and process id the system gives") {
  char host[256] = {};
  REQUIRE(::gethostname(host, sizeof host - 1) == 0);
  CHECK(pgc::local_host_name() == std::string(host));
  CHECK_FALSE(pgc::local_host_name().empty());
  CHECK(pgc::local_process_id() == static_cast<long>(::getpid()));
}
