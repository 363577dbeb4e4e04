#define CATCH_CONFIG_RUNNER
#include "tests/support/catch_session.hpp"

#include <catch2/catch.hpp>

namespace pgc::test {

int run_catch(int argc, char** argv) { return Catch::Session().run(argc, argv); }

}  // namespace pgc::test
