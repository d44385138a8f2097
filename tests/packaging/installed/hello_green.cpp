// SPDX-License-Identifier: Apache-2.0
// hello_green.cpp: a SimHub program linked against the installed tendril::green: POSIX sleep(5)
// in a greenlet takes 5 s of virtual time and none of the wall clock.
#include <unistd.h>

#include <cstdio>

#include "tendril/sim.hpp"

int main() {
  tendril::SimHub hub;
  tendril::run(hub, [] { ::sleep(5); });
  const bool virtual_time = hub.now_ns() == 5'000'000'000;
  std::printf("hello from the installed tendril::green: POSIX sleep(5) %s\n",
              virtual_time ? "took 5 s of virtual time" : "slept for real");
  return virtual_time ? 0 : 1;
}
