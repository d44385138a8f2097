// explore.cpp: exploration and replay of schedules for tests.
#include "tendril/explore.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>

namespace tendril {
namespace {

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  errno = 0;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  if (v[0] == '-' || errno != 0 || *end != '\0') {
    throw UsageError(std::string("tendril: environment variable ") + name +
                     " must be a non-negative integer, got '" + v + "'");
  }
  return n;
}

std::string env_text(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? fallback : std::string(v);
}

std::string file_safe(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '_';
  return out;
}

// One run of body under chooser, on `hub` (made on first use, then reset: its stack pool stays
// warm); returns the failure text, or empty on success.
std::string run_once(const SimOptions& sim, std::unique_ptr<Chooser> chooser,
                     const std::function<void()>& body, std::unique_ptr<SimHub>& hub) {
  if (!hub) {
    hub = std::make_unique<SimHub>(std::move(chooser), sim);
  } else {
    hub->reset(std::move(chooser));
  }
  try {
    run(*hub, [&] { body(); });
    return {};
  } catch (...) {
    return describe_exception(std::current_exception());
  }
}

// trace_failure() replays the failing schedule once more under a Tracer and saves the trace (and,
// with a renderer installed, its flow graph) beside the schedule file. A failure here is noted in
// the result, never raised: the schedule file is what matters.
void trace_failure(SimHub& hub, const std::string& test, const Schedule& schedule,
                   const std::function<void()>& body, ExploreResult& result) {
  const std::string base =
      result.schedule_file.substr(0, result.schedule_file.size() - std::string(".schedule").size());
  try {
    hub.reset(std::make_unique<ReplayChooser>(schedule));
    trace::Trace traced;
    {
      trace::Tracer tracer(hub, test);
      try {
        run(hub, [&] { body(); });
      } catch (...) {
        // The failure itself, again: expected.
      }
      traced = tracer.trace();
    }
    result.trace_file = base + ".trace";
    trace::save_trace(traced, result.trace_file);
    if (trace::FlowRenderer render = trace::flow_renderer()) {
      render(traced, base + ".svg");
      result.flow_file = base + ".svg";
    }
  } catch (const std::exception& e) {
    result.summary +=
        std::string("tendril: could not trace the failing schedule: ") + e.what() + "\n";
  }
}

}  // namespace

ExploreOptions& ExploreOptions::from_env(bool read_shard) {
  policy = env_text("TENDRIL_POLICY", policy);
  if (policy != "fifo" && policy != "random" && policy != "pct" && policy != "dfs") {
    throw UsageError("tendril: TENDRIL_POLICY must be fifo, random, pct or dfs, got '" + policy +
                     "'");
  }
  seed = env_number("TENDRIL_SEED", seed);
  schedules = env_number("TENDRIL_SCHEDULES", schedules);
  pct_depth = static_cast<std::uint32_t>(env_number("TENDRIL_PCT_DEPTH", pct_depth));
  pct_steps = env_number("TENDRIL_PCT_STEPS", pct_steps);
  dfs_bound = static_cast<std::uint32_t>(env_number("TENDRIL_DFS_BOUND", dfs_bound));
  artifacts = env_text("TENDRIL_ARTIFACTS", artifacts);
  replay = env_text("TENDRIL_REPLAY", replay);
  if (!read_shard) return *this;
  const char* total_var =
      std::getenv("TENDRIL_TOTAL_SHARDS") ? "TENDRIL_TOTAL_SHARDS" : "GTEST_TOTAL_SHARDS";
  const char* index_var =
      std::getenv("TENDRIL_SHARD_INDEX") ? "TENDRIL_SHARD_INDEX" : "GTEST_SHARD_INDEX";
  total_shards = env_number(total_var, total_shards);
  shard_index = env_number(index_var, shard_index);
  if (total_shards == 0 || shard_index >= total_shards) {
    throw UsageError(std::string("tendril: shard index ") + std::to_string(shard_index) +
                     " is not below the shard count " + std::to_string(total_shards) + " (" +
                     index_var + ", " + total_var + ")");
  }
  return *this;
}

ExploreResult explore(const ExploreOptions& o, const std::function<void()>& body,
                      const std::string& command) {
  if (o.test.empty()) throw UsageError("tendril::explore: ExploreOptions::test must name the test");
  ExploreResult result;
  std::ostringstream summary;

  if (!o.replay.empty()) {
    Schedule schedule = load_schedule(o.replay);
    if (schedule.test != o.test) {
      throw ScheduleError("tendril: " + o.replay + " is a schedule of test '" + schedule.test +
                          "', not of '" + o.test + "'");
    }
    auto replayer = std::make_unique<ReplayChooser>(schedule);
    ReplayChooser* r = replayer.get();
    std::unique_ptr<SimHub> hub;
    std::string failure = run_once(o.sim, std::move(replayer), body, hub);
    if (failure.empty()) {
      try {
        r->finish();
      } catch (const Divergence& d) {
        failure = d.what();
      }
    }
    result.schedules_run = 1;
    result.distinct = 1;
    if (!failure.empty()) {
      result.failures = 1;
      result.failure = failure;
      result.schedule_file = o.replay;
    }
    summary << "tendril: replayed " << o.replay << " (" << schedule.choices.size() << " choices, "
            << schedule.policy << "): " << (failure.empty() ? "passed" : "failed") << "\n";
    result.summary = summary.str();
    return result;
  }

  std::uint64_t pct_steps = o.pct_steps;
  std::uint64_t pct_threads = 0;
  if (o.policy == "pct" && pct_steps == 0) {
    // k for PCT: the number of choices a plain FIFO run offers (at least 1).
    auto counting = std::make_unique<RecordingChooser>(std::make_unique<Fifo>());
    RecordingChooser* c = counting.get();
    std::unique_ptr<SimHub> hub;
    run_once(o.sim, std::move(counting), body, hub);
    pct_steps = std::max<std::uint64_t>(1, c->records().size());
  }

  std::set<std::uint64_t> hashes;
  std::unique_ptr<SimHub> hub;
  DfsExplorer dfs(o.dfs_bound);
  const std::uint64_t limit = o.policy == "fifo" ? 1 : o.schedules;
  for (std::uint64_t i = 0; i < limit; ++i) {
    std::unique_ptr<Chooser> policy;
    std::uint64_t seed = o.seed + i;
    if (o.policy == "dfs") {
      policy = dfs.next_run();
      if (!policy) break;  // the bounded space is exhausted
      seed = i;
    }
    // Another shard's schedule. A depth-first exploration is one sequence that each run extends,
    // so it cannot be split: shard 0 runs all of it, the others none.
    const bool mine = o.policy == "dfs" ? o.shard_index == 0 : i % o.total_shards == o.shard_index;
    if (!mine) {
      if (o.policy == "dfs") break;
      continue;
    }
    if (o.policy == "fifo") {
      policy = std::make_unique<Fifo>();
    } else if (o.policy == "random") {
      policy = std::make_unique<Random>(seed);
    } else if (o.policy == "pct") {
      policy = std::make_unique<Pct>(seed, o.pct_depth, pct_steps);
    }
    auto recorder = std::make_unique<RecordingChooser>(std::move(policy));
    RecordingChooser* rec = recorder.get();
    const std::string failure = run_once(o.sim, std::move(recorder), body, hub);
    ++result.schedules_run;
    hashes.insert(hub->schedule_hash());
    pct_threads = std::max<std::uint64_t>(pct_threads, hub->greenlets_created());
    if (failure.empty()) continue;
    result.failures = 1;
    result.failure = failure;
    const Schedule schedule = rec->schedule(o.test, seed);
    result.schedule_file = o.artifacts + "/" + file_safe(o.test) + "-" + o.policy + "-" +
                           std::to_string(seed) + ".schedule";
    save_schedule(schedule, result.schedule_file);
    result.replay_command = "TENDRIL_REPLAY=" + result.schedule_file + " " + command;
    trace_failure(*hub, o.test, schedule, body, result);
    break;
  }
  result.distinct = hashes.size();
  summary << "tendril: explored " << o.test << " with " << o.policy;
  if (o.policy == "pct") {
    // Burckhardt et al.'s bound for one schedule, with n the greenlets seen and k the choices.
    const double p = Pct::probability_bound(pct_threads, pct_steps, o.pct_depth);
    const double all = 1.0 - std::pow(1.0 - p, static_cast<double>(result.schedules_run));
    char text[160];
    std::snprintf(text, sizeof text,
                  " (depth %u, n=%llu greenlets, k=%llu choices: a depth-%u bug is found with "
                  "probability >= %.3g per schedule, >= %.3g over this run)",
                  o.pct_depth, static_cast<unsigned long long>(pct_threads),
                  static_cast<unsigned long long>(pct_steps), o.pct_depth, p, all);
    summary << text;
  }
  if (o.policy == "dfs") summary << " (delay bound " << o.dfs_bound << ")";
  if (o.total_shards > 1) summary << ", shard " << o.shard_index << " of " << o.total_shards;
  summary << ": " << result.schedules_run << " schedules, " << result.distinct
          << " distinct interleavings, " << result.failures
          << (result.failures == 1 ? " failure\n" : " failures\n");
  if (!result.ok()) {
    summary << "tendril: first failure: " << result.failure << "\n"
            << "tendril: schedule saved to " << result.schedule_file << "\n"
            << "tendril: replay it with: " << result.replay_command << "\n";
    if (!result.flow_file.empty()) {
      summary << "tendril: its flow graph: " << result.flow_file << " (trace: " << result.trace_file
              << ")\n";
    } else if (!result.trace_file.empty()) {
      summary << "tendril: draw its flow graph with: tendril-viz " << result.trace_file << " -o "
              << result.trace_file.substr(0, result.trace_file.size() - 6) << ".svg\n";
    }
  }
  result.summary = summary.str() + result.summary;  // after any note from trace_failure()
  return result;
}

}  // namespace tendril
