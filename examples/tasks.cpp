// SPDX-License-Identifier: Apache-2.0
// tasks [SEED]: the seed's task(pid) program; the same seed always prints the same order.
#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <string>

#include "seeds.hpp"

int main(int argc, char** argv) {
  std::uint64_t seed = 1;
  if (argc > 2) {
    std::cerr << "usage: tasks [SEED]\n";
    return 2;
  }
  if (argc == 2) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(argv[1], &end, 10);
    if (errno != 0 || end == argv[1] || *end != '\0' || argv[1][0] == '-') {
      std::cerr << "tasks: SEED must be a non-negative integer, got '" << argv[1] << "'\n";
      return 2;
    }
    seed = v;
  }
  std::cout << "seed " << seed << "\n";
  seeds::tasks(std::cout, seed);
  return 0;
}
