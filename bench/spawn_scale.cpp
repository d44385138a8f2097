// SPDX-License-Identifier: Apache-2.0
// spawn_scale MODE N: what N greenlets that stay alive cost to spawn, in one fresh process
// (issue 19's cold spawn). MODE is guarded or dense (StackOptions::mode). On a SimHub:
//   cold      a fresh hub in a fresh process spawns N greenlets that each wait on one Event, and a
//             sleep(0) lets all of them start (each touches its stack): wall time per greenlet
//             from the first spawn until all wait.
//   finish    then the Event is set and all are joined (their stacks go back to the pool, those
//             beyond StackOptions::pool_max_stacks giving their pages back).
//   warm      spawn and start again on the same hub (its pool holds what the first round freed).
//   teardown  destroying that hub, per greenlet of the first round.
//   new hub   spawn and start on a second hub made afterwards in the same process.
// Prints "cold C finish F warm W teardown T newhub H" in microseconds per greenlet, or
// "refused: <why>" when a stack cannot be had (guarded stacks past vm.max_map_count without
// kernel guard regions). Driven by bench/spawn_report.py.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "tendril/sim.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double micros_per(Clock::duration d, long n) {
  return std::chrono::duration<double, std::micro>(d).count() / static_cast<double>(n);
}

struct Round {
  Clock::duration start;   // spawning until all wait
  Clock::duration finish;  // setting the Event until all are joined
};

// round() runs one round on hub; a greenlet that could not get a stack puts the error's text in
// *refused.
Round round(tendril::SimHub& hub, long n, std::string* refused) {
  Round took{};
  hub.set_error_handler([refused](tendril::Greenlet&, std::exception_ptr e) {
    if (!refused->empty()) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      *refused = x.what();
    }
  });
  tendril::run(hub, [&] {
    const auto start = Clock::now();
    tendril::Event go;
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    gs.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) gs.push_back(tendril::spawn([&go] { go.wait(); }));
    tendril::sleep(tendril::Duration::zero());  // every greenlet starts and waits
    const auto started = Clock::now();
    go.set();
    tendril::joinall(gs);
    took = Round{started - start, Clock::now() - started};
  });
  return took;
}

}  // namespace

int main(int argc, char** argv) {
  char* end = nullptr;
  const long n = argc == 3 ? std::strtol(argv[2], &end, 10) : 0;
  if (argc != 3 || (std::strcmp(argv[1], "guarded") != 0 && std::strcmp(argv[1], "dense") != 0) ||
      end == argv[2] || *end != '\0' || n <= 0 || n > 10'000'000) {
    std::fprintf(stderr, "usage: spawn_scale guarded|dense N   (N from 1 to 10,000,000)\n");
    return 2;
  }
  tendril::SimOptions options;
  options.stack.mode =
      std::strcmp(argv[1], "dense") == 0 ? tendril::StackMode::dense : tendril::StackMode::guarded;
  std::string refused;
  std::optional<tendril::SimHub> hub(std::in_place, options);
  const Round cold = round(*hub, n, &refused);
  if (!refused.empty()) {
    std::printf("refused: %s\n", refused.c_str());
    return 0;
  }
  const Round warm = round(*hub, n, &refused);
  const auto t0 = Clock::now();
  hub.reset();
  const Clock::duration teardown = Clock::now() - t0;
  tendril::SimHub second(options);
  const Round newhub = round(second, n, &refused);
  if (!refused.empty()) {
    std::printf("refused: %s\n", refused.c_str());
    return 0;
  }
  std::printf("cold %.3f finish %.3f warm %.3f teardown %.3f newhub %.3f\n",
              micros_per(cold.start, n), micros_per(cold.finish, n), micros_per(warm.start, n),
              micros_per(teardown, n), micros_per(newhub.start, n));
  return 0;
}
