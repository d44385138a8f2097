// SPDX-License-Identifier: Apache-2.0
// tendril/explore.hpp: run a test body under many schedules on the simulated hub; save the first
// failing schedule and say how to replay it. tendril/explore_gtest.hpp wraps it for GoogleTest.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

namespace tendril {

// The bounds explore() and from_env() enforce on depths (larger ones cost memory per schedule
// and find nothing a smaller one would not).
inline constexpr std::uint32_t max_pct_depth = 100;
inline constexpr std::uint32_t max_dfs_bound = 10'000;
inline constexpr std::uint64_t max_first_schedule = std::uint64_t{1} << 62;
inline constexpr unsigned max_jobs = 1024;

// ExploreOptions says how to explore; from_env() lets the environment override it.
struct ExploreOptions {
  std::string test;  // identity written into schedule files (required)
  // policy: fifo, random, pct, pos (Pos), portfolio or dfs. The portfolio, the default, runs
  // each schedule with a strategy drawn from its seed: pct at depth 3, random, pct at depth 2, or
  // pos (a failure's report and file name say which, and its seed command reruns that one). On
  // the planted bugs of bench/bench_shrink.cpp (`bench_shrink find`) it found every bug in every
  // exploration, within 81 schedules; random missed the one that needs a greenlet starved for
  // long, and pct needed medians of 72-287 schedules where noise greenlets yield.
  std::string policy = "portfolio";
  // seed: schedule i (from 0) runs with schedule_seed(seed, i): seed itself first, then seeds
  // hashed from (seed, i), so explorations from different base seeds (1, 2, 3...) do not overlap.
  // fifo runs one schedule and dfs uses none.
  std::uint64_t seed = 1;
  // first_schedule: the index of the first schedule to run (resuming an interrupted exploration;
  // random, pct, pos, portfolio).
  std::uint64_t first_schedule = 0;
  // schedules: how many to run (dfs: at most). 1000 is 12 times the most the portfolio needed on
  // the planted bugs; a small test runs them in well under a second.
  std::uint64_t schedules = 1000;
  std::uint32_t pct_depth = 3;  // pct: the bug depth d
  std::uint64_t pct_steps = 0;  // pct: k; 0 measures it with one Fifo run first
  std::uint32_t dfs_bound = 2;  // dfs: the bound (of dfs_bounding's cost)
  // dfs_bounding: "delay" bounds the sum of the answers (answer i skips i alternatives);
  // "choices" bounds the number of answers away from FIFO, whatever their size (see DfsBounding).
  std::string dfs_bounding = "delay";
  // dfs_deepening: explore bound 0, then 1, ..., up to dfs_bound (iterative deepening), so that
  // the first failure found is one of the cheapest; each level reruns the cheaper schedules it
  // extends (they count in schedules_run). Off: bound dfs_bound at once.
  bool dfs_deepening = false;
  // jobs: how many processes run the schedules (random, pct, pos, portfolio; fifo and dfs run
  // in this one). 0, the default, uses every CPU this process may run on; 1 keeps everything in
  // this process. With more, explore() forks worker processes that take the schedules in turn
  // and report each outcome; it then reruns the lowest-numbered failing schedule here, so the
  // result (the failure, its seed, schedules_run, distinct, the files) is the one a single
  // process gives. What the body does to this process's memory (a counter, a log captured by
  // reference) happens in the workers and is lost, except in that rerun: a test that gathers
  // something across schedules sets jobs = 1. A process that already has other threads is not
  // forked (it explores alone). At most max_jobs.
  unsigned jobs = 0;
  std::string artifacts = "tendril-artifacts";  // where failing schedules are saved
  // This process runs the schedules whose seed (see schedule_seed) % total_shards == shard_index,
  // so a failing seed replays with its own shard's command; dfs cannot be split (shard 0 runs it
  // all).
  std::uint64_t shard_index = 0;
  std::uint64_t total_shards = 1;
  std::string replay;  // a schedule file to replay instead of exploring
  // read_replay_env makes explore() replay TENDRIL_REPLAY when `replay` is empty, if that file
  // is a schedule of this test (of another test, it notes so on stderr and explores as usual).
  bool read_replay_env = true;
  // greenlet_errors_fail: an uncaught exception in any greenlet fails the run at once (its
  // report names the greenlet). false keeps gevent's report-and-continue: the error is printed
  // and only main's outcome counts.
  bool greenlet_errors_fail = true;
  // shrink_runs bounds the runs spent minimising a failing schedule (0: no minimising).
  std::uint64_t shrink_runs = 2000;
  // trace_max_steps bounds the failing runs that are traced (a trace, flow graph and passing
  // neighbour beside the schedule): a run of more steps (a livelock, a run stopped by the step
  // limit) is not, so that its trace cannot take gigabytes; the summary says so, and the schedule
  // still replays it. 0 never traces.
  std::uint64_t trace_max_steps = 50'000;
  // quiet(true) is called before explore() reruns a failing body to minimise it or to record its
  // trace, quiet(false) after: the GoogleTest helper swallows assertion failures meanwhile, so
  // that each failure is reported once. Reruns never print uncaught greenlet errors.
  std::function<void(bool)> quiet;
  // progress: "auto" (on stderr: a line refreshed in place on a terminal, else a line every
  // progress_every_s, as in a CI log; nothing for an exploration shorter than that), "lines" (a
  // line every progress_every_s, terminal or not) or "off".
  std::string progress = "auto";
  double progress_every_s = 10;
  // catch_interrupt: a first Ctrl-C (SIGINT) ends the exploration after the schedule in progress
  // and the summary says so (and where to resume); a second one ends the process as usual. Only
  // when SIGINT has its default disposition (a program's own handler is left alone).
  bool catch_interrupt = true;
  SimOptions sim;  // hub options for every run (step limit, stacks)

  // from_env() applies TENDRIL_POLICY, TENDRIL_SEED, TENDRIL_FIRST_SCHEDULE, TENDRIL_SCHEDULES,
  // TENDRIL_PCT_DEPTH, TENDRIL_PCT_STEPS, TENDRIL_DFS_BOUND, TENDRIL_DFS_BOUNDING (delay, choices),
  // TENDRIL_DFS_DEEPENING (0, 1), TENDRIL_JOBS, TENDRIL_ARTIFACTS, TENDRIL_REPLAY, TENDRIL_SHRINK
  // (the shrink_runs budget), TENDRIL_PROGRESS (auto, lines, off), TENDRIL_PROGRESS_EVERY (seconds,
  // a decimal number), and the shard from TENDRIL_TOTAL_SHARDS/TENDRIL_SHARD_INDEX or else
  // GTEST_TOTAL_SHARDS/GTEST_SHARD_INDEX. A malformed value throws UsageError naming the variable
  // and the value. With read_shard false the shard variables are left alone (TENDRIL_EXPLORE_TEST
  // sets the shard itself). After it, a failure's summary also prints the seed form of the replay
  // command (TENDRIL_POLICY=... TENDRIL_SEED=...), which works only in a program that reads the
  // environment this way.
  ExploreOptions& from_env(bool read_shard = true);
  bool env_applied = false;  // set by from_env()
};

// ExploreResult is what an exploration found.
struct ExploreResult {
  std::uint64_t schedules_run = 0;
  std::uint64_t distinct = 0;      // distinct interleavings, by schedule hash
  std::uint64_t failures = 0;      // 0 or 1: exploration stops at the first failure
  std::string failure;             // what the failing run threw
  std::string schedule_file;       // the minimal failing schedule (absolute path)
  std::string found_file;          // the failing schedule as found, before minimising (absolute)
  std::string save_error;          // why a schedule could not be saved (its file name then empty)
  std::uint64_t found_away = 0;    // its choices away from FIFO (answer != 0)
  std::uint64_t minimal_away = 0;  // the minimal schedule's choices away from FIFO
  std::uint64_t shrink_runs = 0;   // runs spent minimising
  std::string replay_command;      // replays the minimal schedule file, pasted in any shell
  std::string seed_command;        // reruns the failing seed (random, pct; after from_env() only)
  std::string trace_file;          // the minimal schedule's flow trace, beside the schedule file
  std::string flow_file;           // its flow graph (SVG), if a renderer is installed (see viz.hpp)
  std::string last_steps;          // the minimal run's last steps per greenlet (trace::last_steps)
  // A passing neighbour of the minimal schedule (one of its choices answered FIFO instead) and
  // its trace, and where the two runs part ways (see trace::part_ways and tendril-viz --diff).
  std::string passing_trace_file;
  std::string parting;
  bool exhausted = false;       // dfs: every schedule within the bound ran
  std::uint32_t dfs_level = 0;  // dfs: the bound being explored when it stopped (deepening)
  std::string found_by;         // what made the failing schedule: random, pct-d3, pos, dfs-...
  std::uint64_t seed = 0;       // the failing schedule's seed (dfs: its run index)
  bool interrupted = false;     // a Ctrl-C ended the exploration early (see catch_interrupt)
  unsigned jobs = 1;            // the processes that ran the schedules (see ExploreOptions::jobs)
  std::string summary;          // a few lines for the log
  // ok() is true when no schedule failed and the exploration was not interrupted.
  bool ok() const noexcept { return failures == 0 && !interrupted; }
};

// schedule_seed(base, i) is the seed of schedule i of an exploration from base seed `base`:
// base itself for i = 0 (so TENDRIL_SEED=<a failing seed> TENDRIL_SCHEDULES=1 reruns it), else
// a 64-bit hash of (base, i).
std::uint64_t schedule_seed(std::uint64_t base, std::uint64_t i) noexcept;

// explore() runs body inside tendril::run on a fresh SimHub per schedule. A run fails when body
// throws (including Deadlock, a step-limit HubError, or Divergence on replay), or when any
// greenlet dies with an uncaught exception (see ExploreOptions::greenlet_errors_fail). The first
// failing schedule is saved under options.artifacts, minimised (fewer and smaller answers away
// from FIFO that give the same failure; see shrink_runs) and saved again as <name>.min.schedule,
// and exploration stops. With options.replay (or TENDRIL_REPLAY) set, it replays that file once
// instead and saves nothing (throwing ScheduleError if it cannot be read, or if it was recorded
// for another test). `command` is the program invocation to print in the replay commands.
ExploreResult explore(const ExploreOptions& options, const std::function<void()>& body,
                      const std::string& command = "<test binary>");

// RunChecks says what fails a run besides an exception out of its body (see run_checked()).
struct RunChecks {
  bool greenlet_errors_fail = true;  // an uncaught exception in any greenlet fails the run
  bool silent = false;               // uncaught greenlet errors are not printed
  ReplayChooser* replay = nullptr;   // a replay in use: its Divergence is the failure
  // describe renders the failure (default: describe_exception, "type: message").
  std::function<std::string(const std::exception_ptr&)> describe;
};

// run_checked() runs body inside tendril::run on hub and returns what failed, or "" when the run
// passed: a greenlet that died with an uncaught exception ("greenlet #3 'worker' failed with
// std::logic_error: ..."; the run is stopped at once), else what run() threw, and with a replay,
// its first Divergence before anything else (even one the program caught). Never throws.
std::string run_checked(SimHub& hub, const std::function<void()>& body,
                        const RunChecks& checks = {});

// failure_signature() is a failure text without the hub's position (virtual time, step, choice,
// policy), which differ between schedules that fail the same way: two runs fail the same way
// when their signatures are equal.
std::string failure_signature(const std::string& failure);

// away_from_fifo() counts a schedule's answers that are not 0 (not gevent's order).
std::uint64_t away_from_fifo(const Schedule& schedule) noexcept;

// ShrinkResult is a minimised failing schedule.
struct ShrinkResult {
  Schedule schedule;       // the smallest failing schedule found (the input if none smaller)
  std::string failure;     // its failure text
  std::uint64_t runs = 0;  // runs spent
};

// shrink() minimises a failing schedule of body: it reruns body under candidate answer lists
// (answers set to 0, then lowered; choices past the list answer 0) and keeps a candidate when it
// fails with the same failure_signature() and has fewer answers away from FIFO, or as many with
// a smaller sum. At most max_runs runs, on `hub` (reset for each). Every accepted candidate is
// re-recorded, so the result is a schedule the program really makes and replays exactly.
ShrinkResult shrink(SimHub& hub, const Schedule& failing, const std::string& failure,
                    const std::function<void()>& body, const RunChecks& checks,
                    std::uint64_t max_runs);

}  // namespace tendril
