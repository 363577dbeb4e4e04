#pragma once
// Catch2's implementation is compiled once (tests/support/catch_session.cpp, target pgc_catch)
// for every test program; a program with its own main() calls run_catch() instead of defining
// CATCH_CONFIG_RUNNER, the others link pgc_catch_main.

namespace pgc::test {

// Catch::Session().run(argc, argv): the number of failed test cases.
int run_catch(int argc, char** argv);

}  // namespace pgc::test
