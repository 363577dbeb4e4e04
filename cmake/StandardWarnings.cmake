# Warnings as an INTERFACE target: every pgconverge target links pgc_warnings.
add_library(pgc_warnings INTERFACE)
target_compile_options(pgc_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wunused -Woverloaded-virtual -Wconversion -Wnull-dereference
  -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
if(PGC_WERROR)
  target_compile_options(pgc_warnings INTERFACE -Werror)
endif()
