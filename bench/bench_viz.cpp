// SPDX-License-Identifier: Apache-2.0
// bench_viz: what drawing a trace costs: the flow graph's DOT text and its SVG through Graphviz
// for a trace of 10,000 switches, and writing and reading trace files. bench/run.sh prints the
// medians.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "tendril/sim.hpp"
#include "tendril/trace.hpp"
#include "tendril/viz.hpp"

using namespace std::chrono_literals;

namespace {

// A recorded run of 10 greenlets yielding 500 times each: about 10,000 switches.
tendril::trace::Trace recorded() {
  tendril::SimHub hub;
  tendril::trace::Tracer tracer(hub, "bench");
  tendril::run(hub, [&] {
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 10; ++i) {
      gs.push_back(tendril::spawn([] {
        for (int k = 0; k < 500; ++k) tendril::sleep(0s);
      }));
    }
    tendril::joinall(gs);
  });
  return tracer.trace();
}

// Every switch drawn: no folding of the (repetitive) pattern, no size guard.
tendril::viz::FlowOptions everything() {
  tendril::viz::FlowOptions o;
  o.collapse_repeats = false;
  o.max_switches = 20'000;
  return o;
}

std::size_t switches(const tendril::trace::Trace& t) {
  std::size_t n = 0;
  for (const auto& e : t.events) n += e.kind == tendril::trace::EventKind::switch_ ? 1 : 0;
  return n;
}

void BM_FlowDot10kSwitches(benchmark::State& state) {
  const auto t = recorded();
  const auto o = everything();
  for (auto _ : state) benchmark::DoNotOptimize(tendril::viz::flow_dot(t, o));
  state.counters["switches"] = static_cast<double>(switches(t));
}
BENCHMARK(BM_FlowDot10kSwitches)->Unit(benchmark::kMillisecond);

void BM_RenderSvg10kSwitches(benchmark::State& state) {
  const auto t = recorded();
  const auto o = everything();
  const std::string path =
      (std::filesystem::temp_directory_path() / "tendril-bench-viz.svg").string();
  for (auto _ : state) tendril::viz::render_flow(t, path, o);
  std::filesystem::remove(path);
  state.counters["switches"] = static_cast<double>(switches(t));
}
BENCHMARK(BM_RenderSvg10kSwitches)->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(3);

void BM_RenderSvgDefaultGuard(benchmark::State& state) {
  // The defaults on the same trace (repeats folded, at most 2000 switches): tendril-viz's.
  const auto t = recorded();
  const std::string path =
      (std::filesystem::temp_directory_path() / "tendril-bench-viz2.svg").string();
  for (auto _ : state) tendril::viz::render_flow(t, path);
  std::filesystem::remove(path);
}
BENCHMARK(BM_RenderSvgDefaultGuard)->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(3);

void BM_TraceFileRoundTrip(benchmark::State& state) {
  const auto t = recorded();
  for (auto _ : state) {
    const std::string text = tendril::trace::format_trace(t);
    benchmark::DoNotOptimize(tendril::trace::parse_trace(text, "bench"));
  }
  state.counters["ns_per_event"] =
      benchmark::Counter(static_cast<double>(state.iterations() * t.events.size()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_TraceFileRoundTrip)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
