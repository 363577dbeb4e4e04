// RemoteHost's front end: builds each command's exec string (quoted, under sudo and timeout(1))
// and runs it as one channel of the host's SSH session (ssh_link.hpp, where the channels are
// serviced). Commands run through the remote login shell as `sh -c`-style exec requests; values
// are always shell-quoted (command_line.hpp), scripts and file contents travel on stdin.

#include <array>
#include <charconv>
#include <optional>
#include <utility>

#include "providers/ssh/command_line.hpp"
#include "providers/ssh/file_programs.hpp"
#include "providers/ssh/remote_host.hpp"
#include "providers/ssh/ssh_link.hpp"
#include "util/strings.hpp"

namespace pgc::providers {
namespace {

// How much longer than our own timeout the host's timeout(1) waits before it stops a command:
// long enough that it never fires while we are still waiting (it starts later than our clock).
constexpr std::chrono::milliseconds k_remote_grace{1000};

std::string octal_mode(unsigned mode) {
  std::array<char, 16> digits{};
  auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), mode, 8);
  std::string text(digits.data(), end);
  return std::string(text.size() < 4 ? 4 - text.size() : 0, '0') + text;
}

class SshHost final : public RemoteHost {
 public:
  explicit SshHost(std::shared_ptr<ssh_link::Link> link)
      : link_(std::move(link)), options_(link_->options()), who_("host " + describe()) {}

  [[nodiscard]] std::string describe() const override {
    return options_.host_name + " (" + options_.address + ")";
  }

  Result<CommandResult> run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) override {
    auto line = command_line(argv, timeout);
    if (!line) return std::unexpected(line.error().with_context(who_ + ": ssh"));
    return execute(*line, std::nullopt, timeout, "running " + argv.front());
  }

  Result<CommandResult> run_script(const std::string& script, const std::vector<std::string>& args,
                                   std::chrono::milliseconds timeout) override {
    return script_command(script, args, timeout, "running a script");
  }

  Result<CommandResult> run_with_input(const std::vector<std::string>& argv, const std::string& input,
                                       std::chrono::milliseconds timeout) override {
    auto line = command_line(argv, timeout);
    if (!line) return std::unexpected(line.error().with_context(who_ + ": ssh"));
    return execute(*line, std::string_view(input), timeout, "running " + argv.front());
  }

  Result<std::optional<std::string>> read_file(const std::string& path) override {
    const std::string what = "reading " + path;
    if (!starts_with(path, "/")) return fail(who_ + ": " + what + ": the path must be absolute");
    auto result = file_program(read_file_program(), {path}, std::nullopt, what);
    PGC_TRY(result);
    if (result->exit_status == 0) return std::optional<std::string>(std::move(result->out));
    if (result->exit_status == 3 && result->out.empty()) return std::optional<std::string>();
    return fail(who_ + ": " + what + ": " + failure_text(*result));
  }

  Result<void> write_file(const std::string& path, const std::string& content, const FileMode& mode) override {
    const std::string what = "writing " + path;
    if (!starts_with(path, "/") || path.back() == '/')
      return fail(who_ + ": " + what + ": the path must be absolute and name a file");
    if (mode.mode > 07777) return fail(who_ + ": " + what + ": invalid mode " + octal_mode(mode.mode));
    if (mode.owner.empty() || mode.group.empty())
      return fail(who_ + ": " + what + ": owner and group must not be empty");
    // The size is checked so that a connection lost mid-transfer (which ends stdin early) can
    // never be renamed into place.
    auto result = file_program(write_file_program(),
                               {path, mode.owner, mode.group, octal_mode(mode.mode), std::to_string(content.size())},
                               std::string_view(content), what);
    PGC_TRY(result);
    if (result->exit_status != 0) return fail(who_ + ": " + what + ": " + failure_text(*result));
    return {};
  }

  Result<void> make_directory(const std::string& path, const FileMode& mode, ExistingDirectory existing) override {
    const std::string what = "creating directory " + path;
    if (!starts_with(path, "/")) return fail(who_ + ": " + what + ": the path must be absolute");
    if (mode.mode > 07777) return fail(who_ + ": " + what + ": invalid mode " + octal_mode(mode.mode));
    if (mode.owner.empty() || mode.group.empty())
      return fail(who_ + ": " + what + ": owner and group must not be empty");
    auto result = file_program(make_directory_program(),
                               {path, mode.owner, mode.group, octal_mode(mode.mode),
                                existing == ExistingDirectory::keep ? "keep" : "owned"},
                               std::nullopt, what);
    PGC_TRY(result);
    if (result->exit_status != 0) return fail(who_ + ": " + what + ": " + failure_text(*result));
    return {};
  }

 private:
  // The message for a command that ran and failed: its stderr, else its exit status.
  static std::string failure_text(const CommandResult& result) {
    std::string err = trim(result.err);
    std::string status = "exit status " + std::to_string(result.exit_status);
    return err.empty() ? status : err + " (" + status + ")";
  }

  // Runs one of file_programs.hpp's programs with `perl -e` (trusted text; values as arguments
  // after --, content on stdin) within the file timeout.
  Result<CommandResult> file_program(const std::string& program, std::vector<std::string> args,
                                     std::optional<std::string_view> input, const std::string& what) {
    std::vector<std::string> argv{"perl", "-e", program, "--"};
    argv.insert(argv.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
    auto line = command_line(argv, options_.file_timeout);
    if (!line) return fail(who_ + ": " + what + ": " + line.error().message);
    return execute(*line, input, options_.file_timeout, what);
  }

  Result<CommandResult> script_command(const std::string& script, const std::vector<std::string>& args,
                                       std::chrono::milliseconds timeout, const std::string& what) {
    std::vector<std::string> argv{"sh", "-s", "--"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto line = command_line(argv, timeout);
    if (!line) return fail(who_ + ": ssh: " + what + ": " + line.error().message);
    auto input = script_stdin(script);
    if (!input) return fail(who_ + ": ssh: " + what + ": " + input.error().message);
    return execute(*line, std::string_view(*input), timeout, what);
  }

  // The exec string for argv: quoted, under sudo for non-root users, and under timeout(1) so
  // the host stops the command soon after we stop waiting for it.
  Result<std::string> command_line(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) const {
    if (auto plain = build_command_line(argv, options_.user); !plain) return plain;  // messages name argv
    return build_command_line(with_remote_timeout(argv, timeout + k_remote_grace), options_.user);
  }

  Result<CommandResult> execute(const std::string& command_line, std::optional<std::string_view> input,
                                std::chrono::milliseconds timeout, const std::string& what) {
    ssh_link::Exec exec{command_line, input ? std::optional<std::string>(*input) : std::nullopt, timeout, what};
    return link_->execute(std::move(exec));
  }

  std::shared_ptr<ssh_link::Link> link_;
  const SshOptions& options_;  // the link's
  std::string who_;
};

}  // namespace

namespace ssh_link {
std::unique_ptr<RemoteHost> make_remote_host(std::shared_ptr<Link> link) {
  return std::make_unique<SshHost>(std::move(link));
}
}  // namespace ssh_link

Result<std::unique_ptr<RemoteHost>> connect_ssh(const SshOptions& options) {
  auto link = ssh_link::open_link(options);
  PGC_TRY(link);
  return ssh_link::make_remote_host(std::move(*link));
}

}  // namespace pgc::providers
