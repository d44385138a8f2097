// SPDX-License-Identifier: Apache-2.0
// sleepers: the seed program seeds::sleepers() (see seeds.hpp), on the simulated hub.
#include <iostream>

#include "seeds.hpp"

int main() {
  seeds::sleepers(std::cout);
  return 0;
}
