// SPDX-License-Identifier: Apache-2.0
// foo_bar: the seed program seeds::foo_bar() (see seeds.hpp), on the simulated hub.
#include <iostream>

#include "seeds.hpp"

int main() {
  seeds::foo_bar(std::cout);
  return 0;
}
