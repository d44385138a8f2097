// SPDX-License-Identifier: Apache-2.0
// callgrind_probe MODE N: runs N operations of MODE so that bench/run.sh can take the difference
// of two callgrind instruction totals (N2 - N1 operations) as the exact cost of one operation.
// MODE: raw_fiber (N ping-pongs: 2N one-way switches), sleep0 (N sleep(0) by each of two
// greenlets: 2N sleep(0)s; sleep0_dense: the same on dense stacks), spawn_join (N spawn+join, warm
// pool), queue (N ping-pongs: 2N messages), semaphore (N ping-pongs: 2N hand-offs), event (N rounds
// waking 100 waiters: 100N wakeups), imap (N items through Pool(10).imap_unordered).
#include <boost/context/fiber.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr,
                 "usage: callgrind_probe "
                 "raw_fiber|sleep0|sleep0_dense|sleep0_traced|spawn_join|queue|queue10k|"
                 "queue10k_traced|semaphore|event|imap|explore_{fifo,random,pct}[_recorded] N\n");
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
  } else if (mode == "sleep0" || mode == "sleep0_dense") {
    tendril::SimOptions options;
    if (mode == "sleep0_dense") options.stack.mode = tendril::StackMode::dense;
    tendril::SimHub hub(options);
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
  } else if (mode == "queue") {
    tendril::SimHub hub;
    tendril::run(hub, [&] {
      tendril::Queue<long> to_partner, to_main;
      auto partner = tendril::spawn([&] {
        for (long i = 0; i < n; ++i) to_main.put(to_partner.get());
      });
      for (long i = 0; i < n; ++i) {
        to_partner.put(i);
        to_main.get();
      }
      partner->join();
    });
  } else if (mode == "semaphore") {
    tendril::SimHub hub;
    tendril::run(hub, [&] {
      tendril::Semaphore to_partner(0), to_main(0);
      auto partner = tendril::spawn([&] {
        for (long i = 0; i < n; ++i) {
          to_partner.acquire();
          to_main.release();
        }
      });
      for (long i = 0; i < n; ++i) {
        to_partner.release();
        to_main.acquire();
      }
      partner->join();
    });
  } else if (mode == "event") {
    tendril::SimHub hub;
    tendril::run(hub, [&] {
      constexpr int waiters = 100;
      std::vector<tendril::Event> rounds(static_cast<std::size_t>(n) + 1);
      tendril::Event done;
      int woken = 0;
      std::vector<tendril::Ref<tendril::Greenlet>> gs;
      for (int w = 0; w < waiters; ++w) {
        gs.push_back(tendril::spawn([&] {
          for (long r = 0; r < n; ++r) {
            rounds[static_cast<std::size_t>(r)].wait();
            if (++woken == waiters) done.set();
          }
        }));
      }
      tendril::sleep(tendril::Duration::zero());
      for (long r = 0; r < n; ++r) {
        woken = 0;
        done.clear();
        rounds[static_cast<std::size_t>(r)].set();
        done.wait();
      }
      tendril::joinall(gs);
    });
  } else if (mode == "imap") {
    tendril::SimHub hub;
    tendril::run(hub, [&] {
      tendril::Pool pool(10);
      std::vector<long> items(static_cast<std::size_t>(n));
      long sum = 0;
      for (long v : pool.imap_unordered([](long x) { return x; }, items)) sum += v;
      if (sum != 0) std::abort();
    });
  } else if (mode == "sleep0_traced" || mode == "queue10k" || mode == "queue10k_traced") {
    // Tracing costs: sleep0_traced is sleep0 with a Tracer recording; queue10k runs N rounds of
    // 10,000 consumers blocked on one Queue, served by main (one hub, warm stacks).
    tendril::SimOptions options;
    options.stack.pool_max_stacks = 16'384;
    tendril::SimHub hub(options);
    std::optional<tendril::trace::Tracer> tracer;
    if (mode != "queue10k") tracer.emplace(hub);
    if (mode == "sleep0_traced") {
      tendril::run(hub, [&] {
        auto partner = tendril::spawn([&] {
          for (long i = 0; i < n; ++i) tendril::sleep(0s);
        });
        for (long i = 0; i < n; ++i) tendril::sleep(0s);
        partner->join();
      });
    } else {
      for (long round = 0; round < n; ++round) {
        if (tracer) tracer->clear();
        tendril::run(hub, [&] {
          tendril::Queue<int> q;
          std::vector<tendril::Ref<tendril::Greenlet>> consumers;
          consumers.reserve(10'000);
          for (int i = 0; i < 10'000; ++i) consumers.push_back(tendril::spawn([&] { q.get(); }));
          tendril::sleep(0s);
          for (int i = 0; i < 10'000; ++i) q.put(i);
          tendril::joinall(consumers);
        });
      }
    }
  } else if (mode.rfind("explore_", 0) == 0) {
    // N schedules of bench_explore's test (10 greenlets x 10 sleep(0)) on one reset SimHub:
    // explore_fifo|explore_random|explore_pct, with _recorded for a RecordingChooser.
    const bool recorded = mode.size() > 9 && mode.compare(mode.size() - 9, 9, "_recorded") == 0;
    const std::string policy = mode.substr(8, mode.size() - 8 - (recorded ? 9 : 0));
    if (policy != "fifo" && policy != "random" && policy != "pct") {
      std::fprintf(stderr, "callgrind_probe: unknown MODE '%s'\n", mode.c_str());
      return 2;
    }
    tendril::SimHub hub;
    for (long i = 0; i < n; ++i) {
      const auto seed = static_cast<std::uint64_t>(i + 1);
      std::unique_ptr<tendril::Chooser> chooser;
      if (policy == "fifo") chooser = std::make_unique<tendril::Fifo>();
      if (policy == "random") chooser = std::make_unique<tendril::Random>(seed);
      if (policy == "pct") chooser = std::make_unique<tendril::Pct>(seed, 3, 120);
      if (recorded) chooser = std::make_unique<tendril::RecordingChooser>(std::move(chooser));
      hub.reset(std::move(chooser));
      tendril::run(hub, [] {
        std::vector<tendril::Ref<tendril::Greenlet>> gs;
        for (int g = 0; g < 10; ++g) {
          gs.push_back(tendril::spawn([] {
            for (int k = 0; k < 10; ++k) tendril::sleep(0s);
          }));
        }
        tendril::joinall(gs);
      });
    }
  } else {
    std::fprintf(stderr, "callgrind_probe: unknown MODE '%s'\n", mode.c_str());
    return 2;
  }
  return 0;
}
