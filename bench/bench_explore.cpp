// SPDX-License-Identifier: Apache-2.0
// bench_explore: schedules explored per second for a 10-greenlet, ~100-switch test under each
// policy, with and without recording, and replaying a recorded schedule. One iteration is one
// whole schedule on a reset (warm) SimHub, as explore() runs them.
#include <benchmark/benchmark.h>

#include <chrono>
#include <vector>

#include "tendril/explore.hpp"
#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

using namespace std::chrono_literals;

namespace {

// 10 greenlets, each yielding 10 times: about 100 switches per schedule.
void body() {
  std::vector<tendril::Ref<tendril::Greenlet>> gs;
  for (int i = 0; i < 10; ++i) {
    gs.push_back(tendril::spawn([] {
      for (int k = 0; k < 10; ++k) tendril::sleep(0s);
    }));
  }
  tendril::joinall(gs);
}

std::unique_ptr<tendril::Chooser> policy(int which, std::uint64_t seed) {
  switch (which) {
    case 0:
      return std::make_unique<tendril::Fifo>();
    case 1:
      return std::make_unique<tendril::Random>(seed);
    default:
      return std::make_unique<tendril::Pct>(seed, 3, 120);
  }
}

void BM_Schedule(benchmark::State& state) {
  const int which = static_cast<int>(state.range(0));
  const bool record = state.range(1) != 0;
  tendril::SimHub hub;
  std::uint64_t seed = 0;
  for (auto _ : state) {
    auto chooser = policy(which, ++seed);
    if (record) chooser = std::make_unique<tendril::RecordingChooser>(std::move(chooser));
    hub.reset(std::move(chooser));
    tendril::run(hub, body);
    benchmark::DoNotOptimize(hub.schedule_hash());  // explore() reads it after every schedule
  }
  state.counters["schedules_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(std::string(which == 0   ? "fifo"
                             : which == 1 ? "random"
                                          : "pct") +
                 (record ? ", recorded" : ""));
}
BENCHMARK(BM_Schedule)->ArgsProduct({{0, 1, 2}, {0, 1}});

void BM_Replay(benchmark::State& state) {
  auto recorder = std::make_unique<tendril::RecordingChooser>(std::make_unique<tendril::Random>(1));
  auto* rec = recorder.get();
  tendril::SimHub hub(std::move(recorder));
  tendril::run(hub, body);
  const tendril::Schedule schedule = rec->schedule("Bench.Replay", 1);
  for (auto _ : state) {
    hub.reset(std::make_unique<tendril::ReplayChooser>(schedule));
    tendril::run(hub, body);
  }
  state.counters["schedules_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["choices"] = static_cast<double>(schedule.choices.size());
}
BENCHMARK(BM_Replay);

// BM_Explore: a whole explore() of 20,000 random schedules (all passing) on `jobs` processes
// (0: every CPU), as a test runs it; wall time, since the workers do the work.
void BM_Explore(benchmark::State& state) {
  tendril::ExploreOptions o;
  o.test = "Bench.Explore";
  o.policy = "random";
  o.schedules = 20'000;
  o.jobs = static_cast<unsigned>(state.range(0));
  o.progress = "off";
  tendril::ExploreResult r;
  for (auto _ : state) {
    r = tendril::explore(o, body);
    if (!r.ok()) state.SkipWithError(r.summary.c_str());
  }
  state.counters["schedules_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * o.schedules), benchmark::Counter::kIsRate);
  state.counters["processes"] = r.jobs;
  state.SetLabel("explore(), " + std::to_string(r.jobs) + " process" + (r.jobs == 1 ? "" : "es"));
}
BENCHMARK(BM_Explore)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
