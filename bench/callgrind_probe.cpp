// callgrind_probe MODE N: runs N operations of MODE so that bench/run.sh can take the difference
// of two callgrind instruction totals (N2 - N1 operations) as the exact cost of one operation.
// MODE: raw_fiber (N ping-pongs: 2N one-way switches), sleep0 (N sleep(0) by each of two
// greenlets: 2N sleep(0)s), spawn_join (N spawn+join, warm pool).
#include <boost/context/fiber.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tendril/sim.hpp"

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: callgrind_probe raw_fiber|sleep0|spawn_join N\n");
    return 2;
  }
  const std::string mode = argv[1];
  char* end = nullptr;
  const long n = std::strtol(argv[2], &end, 10);
  if (*end != '\0' || n < 0) {
    std::fprintf(stderr, "callgrind_probe: N must be a non-negative integer, got '%s'\n", argv[2]);
    return 2;
  }
  if (mode == "raw_fiber") {
    namespace ctx = boost::context;
    ctx::fiber partner([](ctx::fiber&& back) {
      for (;;) back = std::move(back).resume();
      return std::move(back);
    });
    for (long i = 0; i < n; ++i) partner = std::move(partner).resume();
    partner = ctx::fiber();
  } else if (mode == "sleep0") {
    tendril::SimHub hub;
    tendril::run(hub, [&] {
      auto partner = tendril::spawn([&] {
        for (long i = 0; i < n; ++i) tendril::sleep(0s);
      });
      for (long i = 0; i < n; ++i) tendril::sleep(0s);
      partner->join();
    });
  } else if (mode == "spawn_join") {
    tendril::SimHub hub;
    tendril::run(hub, [&] {
      tendril::spawn([] {})->join();
      for (long i = 0; i < n; ++i) tendril::spawn([] {})->join();
    });
  } else {
    std::fprintf(stderr, "callgrind_probe: unknown MODE '%s'\n", mode.c_str());
    return 2;
  }
  return 0;
}
