// SPDX-License-Identifier: Apache-2.0
// explore_workers.hpp (internal): explore() on every core. Worker processes, forked from the
// exploring one, claim schedule indices from a shared counter and report each run's outcome
// through a pipe; the caller decides from those reports which failure comes first, exactly as a
// single process running the indices in order would.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace tendril::detail {

// At most this many workers (the shared page has a slot for each).
inline constexpr unsigned max_workers = 1024;

// WorkerRun is what a worker reports about one schedule it ran.
struct WorkerRun {
  std::uint64_t hash = 0;       // SimHub::schedule_hash()
  std::uint64_t greenlets = 0;  // SimHub::greenlets_created()
  std::string failure;          // empty: the run passed
};

// WorkerOutcome is what the workers ran, by schedule index (relative to the first).
struct WorkerOutcome {
  unsigned workers = 0;  // processes forked (0: none could be; run here)
  // Every schedule a worker finished and reported. A worker that died loses the reports of its
  // last chunk (at most 16 schedules, all passing, before the one it died in): those are gaps.
  std::map<std::uint64_t, WorkerRun> runs;
  // A worker that died during a schedule (a signal, exit() in the body): the lowest such index,
  // and how ("worker process 123 ended with signal 11 (Segmentation fault)").
  std::optional<std::uint64_t> died_at;
  std::string death;
  // A worker that ended badly outside any schedule (an exception from setup(), say): how.
  std::string broken;
  bool interrupted = false;  // a Ctrl-C (in this process or a worker) stopped the claiming
};

// cpu_count() is how many CPUs this process may run on (its affinity mask), at least 1.
unsigned cpu_count() noexcept;

// thread_count() is how many threads this process has (from /proc; 1 if unknown).
unsigned thread_count() noexcept;

// run_in_workers() forks `jobs` workers. Each runs setup() once, then claims indices 0, 1, ...
// (shared among them, each claimed once) below `count`, and for each index wanted(index) (false:
// another shard's) calls run(index), which runs that schedule and says how it went. A worker stops
// at the first index past the lowest failing one reported so far, and when interrupted() says so
// (in it, or in this process). progress(run) is called in this process as each report arrives.
// Returns when every worker has ended.
WorkerOutcome run_in_workers(unsigned jobs, std::uint64_t count, const std::function<void()>& setup,
                             const std::function<bool(std::uint64_t)>& wanted,
                             const std::function<WorkerRun(std::uint64_t)>& run,
                             const std::function<bool()>& interrupted,
                             const std::function<void(const WorkerRun&)>& progress);

}  // namespace tendril::detail
