// SPDX-License-Identifier: Apache-2.0
// preload_probe: a tendril program in blocking style, not linked with tendril::green. It calls
// POSIX usleep(argv[1] microseconds, default 3 s) in a greenlet on a SimHub and prints the
// virtual time after it: run with LD_PRELOAD=libtendril_green.so the sleep is virtual (and takes
// no wall time); without, it is libc's and the virtual clock stays at 0.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "tendril/sim.hpp"

int main(int argc, char** argv) {
  const long us = argc > 1 ? std::atol(argv[1]) : 3'000'000;
  tendril::SimHub hub;
  tendril::run(hub, [us] { ::usleep(static_cast<useconds_t>(us)); });
  const long long ns = hub.now_ns();
  std::printf("virtual %lld.%09lld s after usleep(%ld)\n", ns / 1'000'000'000, ns % 1'000'000'000,
              us);
  return 0;
}
