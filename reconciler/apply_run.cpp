#include "reconciler/apply_run.hpp"

#include <sstream>

#include "reconciler/passes/apply_pass.hpp"
#include "reconciler/passes/record_pass.hpp"
#include "reconciler/plan_output.hpp"
#include "util/run_lock.hpp"

namespace pgc::reconciler {

ApplyRunResult apply_run(ApplyRunOptions options, World& world, Progress& progress, std::ostream& out,
                         std::ostream& err) {
  // --wait-timeout bounds the whole run: every pass and every wait (waits.hpp).
  if (options.apply.deadline.at == std::chrono::steady_clock::time_point::max())
    options.apply.deadline = ApplyDeadline::starting_now(options.apply.wait_timeout);
  options.revision.source = describe_locations(options.source.locations);
  auto fetched = fetch_pass(options.source, options.fetch, options.run, options.trigger);
  if (!fetched) return fetch_failed(options, fetched.error());
  if (!fetched->run) return ApplyRunResult{.ran = false};
  options.revision = fetched->revision;
  options.trigger = fetched->trigger;
  // → lock
  RunRecorder run(options, err);
  auto lock = RunLock::acquire(options.run.state_dir, options.command + " (" + options.trigger + ")", options.lock_wait);
  if (!lock) return run.not_started(lock.error().message);
  run.start();
  Sessions sessions(world);
  ApplyPasses passes;
  for (int pass = 1;; ++pass) {
    // load → compile → probe → place → secrets → observe → plan (reconcile.cpp)
    std::ostringstream diagnostics;
    auto prepared = prepare(options.run, world, sessions, diagnostics);
    err << diagnostics.str();
    if (!prepared) return run.failed(prepared.error().message, diagnostics.str());
    passes.current = std::move(*prepared);
    print_plan(passes.current.plan, out);
    if (pass == 1) run.record().changes_planned = passes.current.plan.change_count();
    // → ownership, secrets saved → apply → verify
    if (auto claimed = claim_clusters(options, passes); !claimed) return run.failed(claimed.error().message);
    if (stop_requested(options)) return run.finish(1);  // signalled while observing: apply nothing
    apply_changes(options, passes, world, sessions, progress);
    run.record().changes_applied += passes.report.applied();
    // → observe again while a pass acted but did not converge, up to max_passes
    auto why = another_pass_because(options, passes, pass);
    if (why.empty()) {
      if (auto why_not = no_further_pass_because(options, passes); !why_not.empty())
        out << "\npass " << pass << " failed; not observing again (" << why_not << ")\n";
      break;
    }
    out << "\npass " << pass << " did not converge (" << why << "); observing again, pass " << pass + 1 << " of "
        << options.max_passes << "\n\n";
  }
  // → record
  return run.finish(run.record_outcome(passes, out));
}

}  // namespace pgc::reconciler
