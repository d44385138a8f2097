// SPDX-License-Identifier: Apache-2.0
// demo: runs every seed program on the simulated hub and prints what happened and how long it
// took in wall time (virtual seconds cost microseconds).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include "seeds.hpp"
#include "tendril/trace.hpp"
#include "tendril/viz.hpp"

namespace {

template <class F>
void section(const std::string& title, F&& f) {
  std::cout << "== " << title << "\n";
  std::ostringstream out;
  const auto start = std::chrono::steady_clock::now();
  f(out);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  std::cout << out.str() << "   (" << us << " us of wall time)\n\n";
}

}  // namespace

int main() {
  tendril::viz::install_flow_renderer();  // a failing exploration draws its flow graph too
  std::cout << "tendril demo: gevent's seed programs on the simulated hub (virtual time)\n\n";
  section("foo/bar: explicit switches with sleep(0), traced", [](std::ostream& o) {
    tendril::trace::Trace trace;
    seeds::foo_bar(o, &trace);
    // The flow graph of every context switch (tendril-viz draws the same from the trace file).
    tendril::trace::save_trace(trace, "tendril-artifacts/foo_bar.trace");
    tendril::viz::render_flow(trace, "tendril-artifacts/foo_bar.svg");
    tendril::viz::render_flow(trace, "tendril-artifacts/foo_bar.png");
    o << "flow graph: tendril-artifacts/foo_bar.svg (and .png; trace: tendril-artifacts/"
         "foo_bar.trace,\n  redraw with: build/viz/tendril-viz tendril-artifacts/foo_bar.trace "
         "-o flow.pdf)\n";
  });
  section("producer/consumer on a Queue of size 1, traced", [](std::ostream& o) {
    tendril::trace::Trace trace;
    seeds::producer_consumer(o, &trace);
    tendril::trace::save_trace(trace, "tendril-artifacts/producer_consumer.trace");
    tendril::viz::render_flow(trace, "tendril-artifacts/producer_consumer.png");
    o << "flow graph: tendril-artifacts/producer_consumer.png\n";
  });
  section("func1/func2/func3 sleeping 3/2/2 s", seeds::sleepers);
  section("task(pid) with random sleeps, seed 1", [](std::ostream& o) { seeds::tasks(o, 1); });
  section("the same, seed 2 (another order)", [](std::ostream& o) { seeds::tasks(o, 2); });
  section("a Greenlet subclass overriding run()", seeds::subclass);
  section("actors: Pinger and Ponger with inbox queues, 3 rounds",
          [](std::ostream& o) { seeds::actors(o, 3); });
  section("raw symmetric switch (greenlet's gr1/gr2)", seeds::raw_switch);
  section("exploring a check-then-act race (bank transfer) under three policies",
          [](std::ostream& o) {
            // The replay commands it prints name this program by its absolute path.
            char exe[4096] = {0};
            const ssize_t len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
            seeds::explore_bank(o, "tendril-artifacts",
                                len > 0 ? std::string(exe, static_cast<std::size_t>(len))
                                        : std::string("build/examples/demo"));
          });
  return 0;
}
