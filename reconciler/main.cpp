// pgconverge: a thin main; everything lives in pgc_core.
#include "reconciler/cli/cli.hpp"

int main(int argc, char** argv) { return pgc::cli::run(argc, argv); }
