// pgconverge: a thin main; the command line lives in pgc_cli (reconciler/cli/), the rest in pgc_core.
#include "reconciler/cli/cli.hpp"

int main(int argc, char** argv) { return pgc::cli::run(argc, argv); }
