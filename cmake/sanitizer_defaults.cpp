// Linked into every program of a sanitized build (-DPGC_SANITIZE=…, see CMakeLists.txt): the
// sanitizers' default options and LeakSanitizer's suppressions, so that the programs behave the
// same under CTest, scripts/test and by hand. ASAN_OPTIONS / LSAN_OPTIONS / UBSAN_OPTIONS given
// in the environment still override these.

#include <cstdlib>
#include <string_view>

extern "C" {

// Leaks reported at exit fail the program (exit code 23); a report names file and line.
const char* __asan_default_options() { return "detect_leaks=1:halt_on_error=1:strict_string_checks=1"; }
const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }

// Only leaks inside Debian 12's libraries, each traced to its cause (pgconverge's own code has
// none to suppress). These libraries have no frame pointers, so LeakSanitizer's fast unwinder
// stops inside them and a report names only the library: by default whole libraries are
// suppressed. PGC_LSAN_PRECISE=1 with ASAN_OPTIONS=fast_unwind_on_malloc=0 (full stacks, slow)
// suppresses only the traced causes, so that a leak of pgconverge's own use of libgit2 shows
// (integration.git runs so).
const char* __lsan_default_suppressions() {
  const char* precise = std::getenv("PGC_LSAN_PRECISE");
  if (precise && std::string_view(precise) == "1")
    return
        // libgit2 1.5: git_regexp_search does not free its pcre2 match data when nothing
        // matches (libgit2 PR #6382, fixed in 1.6); reached from git_remote_create_anonymous'
        // config reads.
        "leak:pcre2_match_data_create_8\n"
        "leak:pcre2_match_8\n"
        // libgit2 1.5's ssh transport (over libssh2): the known-hosts list and the auth-method
        // list of each connection (git_remote_fetch over ssh://), freed by neither library.
        "leak:libssh2_knownhost_init\n"
        "leak:libssh2_userauth_list\n"
        "leak:git_remote_connect_ext\n";
  return "leak:libpcre2-8.so\n"
         "leak:libssh2.so\n"
         "leak:libgit2.so\n";
}

}  // extern "C"
