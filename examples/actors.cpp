// SPDX-License-Identifier: Apache-2.0
// actors: gevent's Actor example (Pinger/Ponger with inbox queues), on the simulated hub.
#include <iostream>

#include "seeds.hpp"

int main() {
  seeds::actors(std::cout, 5);
  return 0;
}
