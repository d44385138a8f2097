// SPDX-License-Identifier: Apache-2.0
// bench_primitives: Google Benchmark figures for the coordination primitives on SimHub (Queue
// ping-pong, Event wakeup of 10k waiters, Pool(10).imap_unordered, Semaphore hand-off).
// bench/run.sh runs it next to gevent's twins (bench/gevent_twin.py) and prints the ratios.
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <vector>

#include "tendril/sim.hpp"

using namespace std::chrono_literals;

namespace {

benchmark::Counter per(double n) {
  return benchmark::Counter(n, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Two greenlets pass a message back and forth through two queues; one iteration is two messages.
void BM_QueuePingPong(benchmark::State& state) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    tendril::Queue<int> to_partner, to_main;
    auto partner = tendril::spawn([&] {
      for (;;) {
        int v = to_partner.get();
        if (v < 0) return;
        to_main.put(v + 1);
      }
    });
    for (auto _ : state) {
      to_partner.put(1);
      benchmark::DoNotOptimize(to_main.get());
    }
    to_partner.put(-1);
    partner->join();
  });
  state.counters["ns_per_message"] = per(static_cast<double>(state.iterations()) * 2);
}
BENCHMARK(BM_QueuePingPong);

// 10k greenlets wait on an Event; set() wakes them all, and each waits on the next round's Event.
void BM_EventWakeup10k(benchmark::State& state) {
  constexpr int waiters = 10000;
  tendril::SimOptions options;
  options.stack.mode = tendril::StackMode::dense;
  options.stack.size_bytes = 16 * 1024;
  tendril::SimHub hub(options);
  tendril::run(hub, [&] {
    auto current = std::make_unique<tendril::Event>();
    tendril::Event done;
    int woken = 0;
    bool stop = false;
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < waiters; ++i) {
      gs.push_back(tendril::spawn([&] {
        for (;;) {
          current->wait();
          if (stop) return;
          if (++woken == waiters) done.set();
        }
      }));
    }
    tendril::sleep(0s);  // all waiting
    for (auto _ : state) {
      auto next = std::make_unique<tendril::Event>();
      std::swap(current, next);  // waiters re-wait on the new one
      woken = 0;
      done.clear();
      next->set();
      done.wait();
      state.PauseTiming();
      next.reset();
      state.ResumeTiming();
    }
    stop = true;
    current->set();
    tendril::joinall(gs);
  });
  state.counters["ns_per_waiter"] = per(static_cast<double>(state.iterations()) * waiters);
}
BENCHMARK(BM_EventWakeup10k)->Unit(benchmark::kMillisecond);

// Pool(10).imap_unordered over 100k trivial items; the figure is per item.
void BM_PoolImapUnordered100k(benchmark::State& state) {
  constexpr int items_count = 100000;
  tendril::SimHub hub;
  std::vector<int> items(items_count);
  for (int i = 0; i < items_count; ++i) items[static_cast<std::size_t>(i)] = i;
  tendril::run(hub, [&] {
    tendril::Pool pool(10);
    for (auto _ : state) {
      long sum = 0;
      for (int v : pool.imap_unordered([](int x) { return x; }, items)) sum += v;
      benchmark::DoNotOptimize(sum);
    }
  });
  state.counters["ns_per_item"] = per(static_cast<double>(state.iterations()) * items_count);
}
BENCHMARK(BM_PoolImapUnordered100k)->Unit(benchmark::kMillisecond);

// Two greenlets hand a permit back and forth through two Semaphore(0)s; one iteration is two
// hand-offs.
void BM_SemaphoreHandoff(benchmark::State& state) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    tendril::Semaphore to_partner(0), to_main(0);
    bool stop = false;
    auto partner = tendril::spawn([&] {
      for (;;) {
        to_partner.acquire();
        if (stop) return;
        to_main.release();
      }
    });
    for (auto _ : state) {
      to_partner.release();
      to_main.acquire();
    }
    stop = true;
    to_partner.release();
    partner->join();
  });
  state.counters["ns_per_handoff"] = per(static_cast<double>(state.iterations()) * 2);
}
BENCHMARK(BM_SemaphoreHandoff);

}  // namespace

BENCHMARK_MAIN();
