// SPDX-License-Identifier: Apache-2.0
// subclass: the seed program seeds::subclass() (see seeds.hpp), on the simulated hub.
#include <iostream>

#include "seeds.hpp"

int main() {
  seeds::subclass(std::cout);
  return 0;
}
