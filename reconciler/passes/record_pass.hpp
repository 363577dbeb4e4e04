#pragma once
// The record pass of an apply run: the outcome of each cluster printed and recorded, and the run
// appended to the history (history.hpp). RunRecorder keeps the record from the moment the run
// holds the lock until it is written, failures included.

#include <chrono>
#include <ostream>
#include <string>

#include "reconciler/apply_run.hpp"
#include "reconciler/history.hpp"
#include "reconciler/passes/apply_pass.hpp"

namespace pgc::reconciler {

// The fetch failed: the caller's FetchHooks::failed reports it and says whether to record it
// (record_failure); exit code 1, no run.
ApplyRunResult fetch_failed(const ApplyRunOptions& options, const Error& error);

class RunRecorder {
 public:
  RunRecorder(const ApplyRunOptions& options, std::ostream& err);

  RunRecord& record() { return result_.record; }

  // The lock could not be taken: the error printed and returned, nothing recorded.
  ApplyRunResult not_started(const std::string& error);
  // The run holds the lock: its clock starts, and the previous run is read (its last applied
  // revisions carry over).
  void start();
  // A pass failed: the error printed and recorded, with the errors among the pass's
  // diagnostics (which carry file:line); exit code 1.
  ApplyRunResult failed(const std::string& error, const std::string& diagnostics = "");
  // The run ends: its result (interrupted when a stop was asked) appended to the history.
  ApplyRunResult finish(int code);

  // Prints each cluster's outcome and the time taken, and records them; returns the exit code
  // (0 converged or nothing to do, 1 otherwise).
  int record_outcome(const ApplyPasses& passes, std::ostream& out);

 private:
  void record_cluster(const DesiredCluster& dc, const ApplyPasses& passes, std::ostream& out);
  void record_time(const ApplyPasses& passes, std::ostream& out);

  const ApplyRunOptions& options_;
  std::ostream& err_;
  ApplyRunResult result_;
  std::chrono::steady_clock::time_point started_;
  std::optional<RunRecord> previous_;
};

// Appends the record to the state dir's history; a warning on err when it cannot.
void append_history(const ApplyRunOptions& options, const RunRecord& record, std::ostream& err);

}  // namespace pgc::reconciler
