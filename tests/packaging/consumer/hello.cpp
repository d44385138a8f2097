// SPDX-License-Identifier: Apache-2.0
// hello.cpp: the README's kind of first program, built by a project that sets no C++ standard.
#include <chrono>
#include <cstdio>

#include "tendril/sim.hpp"

int main() {
  using namespace std::chrono_literals;
  tendril::SimHub hub;
  int ran = 0;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([&] { ++ran; });
    tendril::sleep(1s);
    g->join();
  });
  std::printf("hello from tendril: %d greenlet ran, virtual time %lld ns\n", ran,
              static_cast<long long>(hub.now_ns()));
  return ran == 1 ? 0 : 1;
}
