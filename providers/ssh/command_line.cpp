#include "providers/ssh/command_line.hpp"

#include <algorithm>

#include "util/duration.hpp"
#include "util/strings.hpp"

namespace pgc::providers {

Result<std::string> build_command_line(const std::vector<std::string>& argv, std::string_view user) {
  if (argv.empty()) return fail("empty command");
  std::string line = user == "root" ? "" : "sudo -n --";
  for (std::size_t i = 0; i < argv.size(); ++i) {
    if (argv[i].find('\0') != std::string::npos)
      return fail("argument " + std::to_string(i) + " of " + shell_quote(argv[0]) +
                  " contains a NUL byte");
    if (!line.empty()) line += ' ';
    line += shell_quote(argv[i]);
  }
  return line;
}

std::vector<std::string> with_remote_timeout(const std::vector<std::string>& argv,
                                             std::chrono::milliseconds after) {
  // timeout(1) takes fractional seconds; never "ms", never 0 (which would disable it).
  auto ms = std::max<long long>(after.count(), 1);
  std::string seconds = format_duration(std::chrono::milliseconds(ms < 1000 ? 1000 : ms));
  std::vector<std::string> out{"timeout", "-k", "5s", seconds};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

Result<std::string> script_stdin(std::string_view script) {
  if (script.find('\0') != std::string_view::npos) return fail("script contains a NUL byte");
  // The newline before '}' ends a last line without one (or a trailing comment).
  std::string text = "{\n";
  text += script;
  text += "\n} </dev/null\n";
  return text;
}

}  // namespace pgc::providers
