// SPDX-License-Identifier: Apache-2.0
// bench_green: what tendril::green (the libc interposer) costs. clock_gettime as libc runs it
// (its own symbol, found past the interposer), through the interposer off any hub (pass-through),
// and on a SimHub (the virtual clock); POSIX usleep(0) on a SimHub greenlet against
// tendril::sleep(0), both a sleep(0) ping-pong between two greenlets. Read the CPU time column:
// inside run() on a SimHub the benchmark library's own wall clock is the interposed one, which
// reads virtual time (standing still here).
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <time.h>
#include <unistd.h>

#include <chrono>

#include "tendril/sim.hpp"

namespace {

using ClockGettime = int (*)(clockid_t, timespec*);

// libc's own clock_gettime: looked up in libc.so.6 itself, not through the global scope (where
// the interposer comes first).
ClockGettime libc_clock_gettime() {
  void* libc = ::dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  return libc != nullptr ? reinterpret_cast<ClockGettime>(::dlsym(libc, "clock_gettime")) : nullptr;
}

void BM_ClockGettime_Libc(benchmark::State& state) {
  const ClockGettime real = libc_clock_gettime();
  if (real == nullptr) {
    state.SkipWithError("libc.so.6 not found");
    return;
  }
  timespec t{};
  for (auto _ : state) {
    real(CLOCK_MONOTONIC, &t);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_ClockGettime_Libc);

void BM_ClockGettime_InterposedOffHub(benchmark::State& state) {
  timespec t{};
  for (auto _ : state) {
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_ClockGettime_InterposedOffHub);

void BM_ClockGettime_InterposedOnSimHub(benchmark::State& state) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    timespec t{};
    for (auto _ : state) {
      ::clock_gettime(CLOCK_MONOTONIC, &t);
      benchmark::DoNotOptimize(t);
    }
  });
}
BENCHMARK(BM_ClockGettime_InterposedOnSimHub);

// A sleep(0) ping-pong between two greenlets on a SimHub; items are sleeps.
template <bool posix>
void BM_Sleep0PingPong(benchmark::State& state) {
  tendril::SimOptions options;
  options.livelock_steps = 0;  // nothing but sleep(0), on purpose
  tendril::SimHub hub(options);
  tendril::run(hub, [&] {
    bool done = false;
    auto other = tendril::spawn([&] {
      while (!done) {
        if constexpr (posix) {
          ::usleep(0);
        } else {
          tendril::sleep(std::chrono::seconds(0));
        }
      }
    });
    for (auto _ : state) {
      if constexpr (posix) {
        ::usleep(0);
      } else {
        tendril::sleep(std::chrono::seconds(0));
      }
    }
    done = true;
    other->join();
  });
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_Sleep0PingPong<false>)->Name("BM_Sleep0PingPong/tendril_sleep");
BENCHMARK(BM_Sleep0PingPong<true>)->Name("BM_Sleep0PingPong/posix_usleep");

}  // namespace

BENCHMARK_MAIN();
