// tendril/explore.hpp: run a test body under many schedules on the simulated hub; save the first
// failing schedule and say how to replay it. tendril/explore_gtest.hpp wraps it for GoogleTest.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

namespace tendril {

// ExploreOptions says how to explore; from_env() lets the environment override it.
struct ExploreOptions {
  std::string test;               // identity written into schedule files (required)
  std::string policy = "random";  // fifo, random, pct or dfs
  std::uint64_t seed = 1;         // schedule i uses seed + i (fifo: one schedule, dfs: none)
  std::uint64_t schedules = 100;  // how many to run (dfs: at most)
  std::uint32_t pct_depth = 3;    // pct: the bug depth d
  std::uint64_t pct_steps = 0;    // pct: k; 0 measures it with one Fifo run first
  std::uint32_t dfs_bound = 2;    // dfs: the delay bound
  std::string artifacts = "tendril-artifacts";  // where failing schedules are saved
  std::uint64_t shard_index = 0;  // this process runs schedules i with i % total == index
  std::uint64_t total_shards = 1;
  std::string replay;  // a schedule file to replay instead of exploring
  SimOptions sim;      // hub options for every run (step limit, stacks)

  // from_env() applies TENDRIL_POLICY, TENDRIL_SEED, TENDRIL_SCHEDULES, TENDRIL_PCT_DEPTH,
  // TENDRIL_PCT_STEPS, TENDRIL_DFS_BOUND, TENDRIL_ARTIFACTS, TENDRIL_REPLAY, and the shard from
  // TENDRIL_TOTAL_SHARDS/TENDRIL_SHARD_INDEX or else GTEST_TOTAL_SHARDS/GTEST_SHARD_INDEX. A
  // malformed value throws UsageError naming the variable and the value. With read_shard false
  // the shard variables are left alone (TENDRIL_EXPLORE_TEST sets the shard itself).
  ExploreOptions& from_env(bool read_shard = true);
};

// ExploreResult is what an exploration found.
struct ExploreResult {
  std::uint64_t schedules_run = 0;
  std::uint64_t distinct = 0;  // distinct interleavings, by schedule hash
  std::uint64_t failures = 0;  // 0 or 1: exploration stops at the first failure
  std::string failure;         // what the failing run threw
  std::string schedule_file;   // where the failing schedule was saved
  std::string replay_command;  // how to replay it
  std::string trace_file;      // the failing schedule's flow trace, beside the schedule file
  std::string flow_file;       // its flow graph (SVG), if a renderer is installed (see viz.hpp)
  std::string summary;         // a few lines for the log
  bool ok() const noexcept { return failures == 0; }
};

// explore() runs body inside tendril::run on a fresh SimHub per schedule. A run fails when body
// throws (including Deadlock, a step-limit HubError, or Divergence on replay). The first failing
// schedule is saved under options.artifacts and exploration stops. With options.replay set, it
// replays that file once instead (throwing ScheduleError if it cannot be read, or if it was
// recorded for another test). `command` is the program invocation to print in replay_command.
ExploreResult explore(const ExploreOptions& options, const std::function<void()>& body,
                      const std::string& command = "<test binary>");

}  // namespace tendril
