// SPDX-License-Identifier: Apache-2.0
// switch_scale N ROUNDS: the cost of a switch among N live greenlets (issue 19's cache collapse).
// On a SimHub (Fifo policy, dense stacks of 16 KiB), N greenlets each call sleep(0) ROUNDS times;
// every sleep(0) is a switch out to the hub and a switch into the next greenlet, round robin, so
// each switch touches another greenlet's object and stack. Prints "ns_per_switch S" (wall time
// of the rounds over N x ROUNDS resumptions, after one warm-up round). Driven by
// bench/switch_report.py.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "tendril/sim.hpp"

int main(int argc, char** argv) {
  char* end1 = nullptr;
  char* end2 = nullptr;
  const long n = argc == 3 ? std::strtol(argv[1], &end1, 10) : 0;
  const long rounds = argc == 3 ? std::strtol(argv[2], &end2, 10) : 0;
  if (argc != 3 || *end1 != '\0' || *end2 != '\0' || n <= 0 || n > 2'000'000 || rounds <= 0) {
    std::fprintf(stderr, "usage: switch_scale N ROUNDS   (N from 1 to 2,000,000; ROUNDS >= 1)\n");
    return 2;
  }
  tendril::SimOptions options;
  options.stack.mode = tendril::StackMode::dense;
  options.stack.size_bytes = 16 * 1024;
  options.stack.pool_max_stacks = 2'100'000;
  options.livelock_steps = 0;  // sleep(0) rounds are all this program does
  tendril::SimHub hub(options);
  double ns = 0;
  tendril::run(hub, [&] {
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    gs.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) {
      gs.push_back(tendril::spawn([rounds] {
        for (long r = 0; r <= rounds; ++r) tendril::sleep(tendril::Duration::zero());
      }));
    }
    tendril::sleep(tendril::Duration::zero());  // all start and make their warm-up sleep(0)
    const auto start = std::chrono::steady_clock::now();
    tendril::joinall(gs);
    ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  });
  std::printf("ns_per_switch %.1f\n", ns / static_cast<double>(n * rounds));
  return 0;
}
