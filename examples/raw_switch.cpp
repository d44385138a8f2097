// SPDX-License-Identifier: Apache-2.0
// raw_switch: the seed program seeds::raw_switch() (see seeds.hpp), on the simulated hub.
#include <iostream>

#include "seeds.hpp"

int main() {
  seeds::raw_switch(std::cout);
  return 0;
}
