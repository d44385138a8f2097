// SPDX-License-Identifier: Apache-2.0
// use.cpp: includes one component's header (TENDRIL_HEADER) and switches to a RawGreenlet (no hub),
// so that the program links against libtendril_sched and Boost.Context.
#include <cstdio>

#include TENDRIL_HEADER
#include "tendril/sched.hpp"

int main() {
  int ran = 0;
  tendril::RawGreenlet g([&] { ++ran; });
  g.switch_to();
  std::printf("%s: %d raw greenlet ran\n", TENDRIL_HEADER, ran);
  return ran == 1 ? 0 : 1;
}
