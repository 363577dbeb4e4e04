# pgc_find_libfuzzer(<compiler var> <why var>): finds a clang++ that links a libFuzzer target
# with ASan and UBSan (what tests/fuzz/run.sh builds), by compiling and linking a one-line fuzz
# target once; sets <compiler var> to its path, or leaves it empty and sets <why var> to the
# reason. A working compiler is cached (PGC_FUZZ_CLANGXX); a missing one is looked for again on
# the next configure, so installing clang later is noticed.
function(pgc_find_libfuzzer compiler_var why_var)
  if(PGC_FUZZ_CLANGXX AND EXISTS "${PGC_FUZZ_CLANGXX}")
    set(${compiler_var} "${PGC_FUZZ_CLANGXX}" PARENT_SCOPE)
    return()
  endif()
  find_program(clangxx NAMES clang++ clang++-16 clang++-15 clang++-14 NO_CACHE)
  if(NOT clangxx)
    set(${compiler_var} "" PARENT_SCOPE)
    set(${why_var} "clang++ is not installed (Debian: apt-get install clang libclang-rt-14-dev)" PARENT_SCOPE)
    return()
  endif()
  set(dir ${CMAKE_BINARY_DIR}/CMakeFiles/libfuzzer-check)
  file(MAKE_DIRECTORY ${dir})
  file(WRITE ${dir}/check.cpp
    "#include <cstddef>\n#include <cstdint>\n"
    "extern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }\n")
  execute_process(
    COMMAND ${clangxx} -fsanitize=fuzzer,address,undefined ${dir}/check.cpp -o ${dir}/check
    RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    string(REGEX REPLACE "\n.*" "" first_line "${output}")
    set(${compiler_var} "" PARENT_SCOPE)
    set(${why_var}
        "${clangxx} cannot link a libFuzzer target (Debian: apt-get install libclang-rt-14-dev): ${first_line}"
        PARENT_SCOPE)
    return()
  endif()
  set(PGC_FUZZ_CLANGXX "${clangxx}" CACHE FILEPATH "clang++ used for the fuzz_manifests test" FORCE)
  set(${compiler_var} "${clangxx}" PARENT_SCOPE)
endfunction()
