// SPDX-License-Identifier: Apache-2.0
// hello_real.cpp: a LibevHub program linked against the installed tendril::realio and viz.
#include <chrono>
#include <cstdio>

#include "tendril/realio.hpp"
#include "tendril/viz.hpp"

int main() {
  using namespace std::chrono_literals;
  tendril::LibevHub hub;
  int ran = 0;
  tendril::run(hub, [&] {
    tendril::spawn([&] { ++ran; })->join();
    tendril::sleep(1ms);
  });
  std::printf("hello from the installed tendril::realio: %d greenlet ran\n", ran);
  return ran == 1 ? 0 : 1;
}
