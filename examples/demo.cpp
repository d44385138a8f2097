// SPDX-License-Identifier: Apache-2.0
// demo: runs every seed program on the simulated hub and prints what happened and how long it
// took in wall time (virtual seconds cost microseconds).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>

#include "seeds.hpp"
#include "tendril/trace.hpp"
#include "tendril/viz.hpp"

namespace {

// shell_word() is `path` as one word of a shell command: as it is, or single-quoted.
std::string shell_word(const std::string& path) {
  if (path.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-") ==
      std::string::npos) {
    return path;
  }
  std::string out = "'";
  for (char c : path) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// absolute() is where a file the demo wrote is, so that the commands it prints work pasted into
// any shell, from any directory.
std::string absolute(const std::string& relative) {
  return std::filesystem::absolute(relative).lexically_normal().string();
}

// The tendril-viz this build made (its absolute path), else the one on PATH.
std::string viz_tool() {
#ifdef DEMO_VIZ_TOOL
  if (std::filesystem::exists(DEMO_VIZ_TOOL)) return shell_word(DEMO_VIZ_TOOL);
#endif
  return "tendril-viz";
}

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
    o << "flow graph: " << absolute("tendril-artifacts/foo_bar.svg")
      << " (and .png; trace: " << absolute("tendril-artifacts/foo_bar.trace")
      << ")\n  redraw it with: " << viz_tool() << " "
      << shell_word(absolute("tendril-artifacts/foo_bar.trace")) << " -o "
      << shell_word(absolute("tendril-artifacts/foo_bar.pdf")) << "\n";
  });
  section("producer/consumer on a Queue of size 1, traced", [](std::ostream& o) {
    tendril::trace::Trace trace;
    seeds::producer_consumer(o, &trace);
    tendril::trace::save_trace(trace, "tendril-artifacts/producer_consumer.trace");
    tendril::viz::render_flow(trace, "tendril-artifacts/producer_consumer.png");
    o << "flow graph: " << absolute("tendril-artifacts/producer_consumer.png") << "\n";
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
