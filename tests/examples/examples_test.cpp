// SPDX-License-Identifier: Apache-2.0
// The seed programs print exactly what gevent's versions print, on the simulated hub.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <sstream>
#include <string>

#include "seeds.hpp"
#include "tendril/realio.hpp"
#include "tendril/sim.hpp"

using namespace std::chrono_literals;

namespace {
template <class F>
std::string capture(F&& f) {
  std::ostringstream out;
  f(out);
  return out.str();
}
}  // namespace

// foo/bar: gevent's order.
TEST(Examples, FooBar) {
  EXPECT_EQ(capture([](std::ostream& o) { seeds::foo_bar(o); }),
            "Running in foo\nExplicit context to bar\nExplicit context switch to foo again\n"
            "Implicit context switch back to bar\n");
}

// func1/func2/func3 sleeping 3/2/2 s: func2, func3, func1, at virtual times.
TEST(Examples, Sleepers) {
  EXPECT_EQ(capture(seeds::sleepers),
            "func2 done at 2.000 s\nfunc3 done at 2.000 s\nfunc1 done at 3.000 s\n");
}

// task(pid): synchronous is always in order; asynchronous depends only on the seed.
TEST(Examples, TasksDependOnlyOnTheSeed) {
  auto run = [](std::uint64_t seed) {
    return capture([seed](std::ostream& o) { seeds::tasks(o, seed); });
  };
  const std::string one = run(1);
  EXPECT_EQ(one, run(1));
  EXPECT_EQ(one.substr(0, one.find("Asynchronous:")),
            "Synchronous:\nTask 1 done\nTask 2 done\nTask 3 done\nTask 4 done\nTask 5 done\n"
            "Task 6 done\nTask 7 done\nTask 8 done\nTask 9 done\n");
  // Seed 1's asynchronous order is pinned: it must not change across builds or machines.
  EXPECT_EQ(one.substr(one.find("Asynchronous:")),
            "Asynchronous:\nTask 2 done\nTask 9 done\nTask 1 done\nTask 4 done\nTask 5 done\n"
            "Task 0 done\nTask 7 done\nTask 3 done\nTask 6 done\nTask 8 done\n");
  std::set<std::string> orders;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) orders.insert(run(seed));
  EXPECT_GE(orders.size(), 4u);
}

// The Greenlet subclass sleeps 4 virtual seconds and succeeds.
TEST(Examples, Subclass) {
  EXPECT_EQ(capture(seeds::subclass), "MyNoopGreenlet(4) finished at 4.000 s, successful\n");
}

// The Actor example: ping and pong answer each other until each got its 3 messages.
TEST(Examples, Actors) {
  EXPECT_EQ(capture([](std::ostream& o) { seeds::actors(o, 3); }),
            "ping got start\npong got ping\nping got pong\npong got ping\nping got pong\n"
            "pong got ping\n");
}

// The raw switch example prints 12, 56, 34 (never 78).
TEST(Examples, RawSwitch) { EXPECT_EQ(capture(seeds::raw_switch), "12\n56\n34\n"); }

namespace {
const char* const select_output =
    "Started Polling: at 0.0 seconds\nStarted Polling: at 0.0 seconds\n"
    "Hey lets do some stuff while the greenlets poll, at 0.0 seconds\n"
    "Ended Polling: at 2.0 seconds\nEnded Polling: at 2.0 seconds\n";
}  // namespace

// gevent's select example on SimHub: gevent's output, ending at exactly 2 s of virtual time.
TEST(Examples, SelectPollingOnSimHub) {
  tendril::SimHub hub;
  std::ostringstream out;
  seeds::select_polling(out, hub);
  EXPECT_EQ(out.str(), select_output);
  EXPECT_EQ(hub.now_ns(), 2'000'000'000);
}

// The same program on LibevHub: the same output after about 2 s of wall time (the seed's spec;
// the one timed assertion of the suite, with generous bounds).
TEST(Examples, SelectPollingOnLibevHub) {
  tendril::LibevHub hub;
  std::ostringstream out;
  const auto start = std::chrono::steady_clock::now();
  seeds::select_polling(out, hub);
  const auto wall = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(out.str(), select_output);
  EXPECT_GE(wall, 1900ms);
  EXPECT_LT(wall, 3s);
}

// The hello HTTP server on SimHub: 200 concurrent clients all get 200 OK at exactly 0.1 s of
// virtual time under Fifo (no latency), or 0.1 s plus two 50 us latencies (request, answer).
TEST(Examples, HelloHttpOnSimHub) {
  {
    tendril::SimHub hub;
    std::ostringstream out;
    const seeds::HttpLoad load = seeds::hello_http_load(out, hub, 200);
    EXPECT_EQ(load.ok, 200);
    EXPECT_EQ(load.failed, 0);
    EXPECT_EQ(load.elapsed, 100ms);
    EXPECT_EQ(out.str(), "200/200 requests answered with 200 OK, 0 failed, in 0.100 s\n");
  }
  tendril::SimOptions options;
  options.net.min_latency_us = 50;
  options.net.max_latency_us = 50;
  tendril::SimHub hub(options);
  std::ostringstream out;
  const seeds::HttpLoad load = seeds::hello_http_load(out, hub, 200);
  EXPECT_EQ(load.ok, 200);
  EXPECT_EQ(load.elapsed, 100ms + 100us);
}

// With random latencies every client is still answered, and a seed replays to the same time.
TEST(Examples, HelloHttpOnSimHubWithRandomLatency) {
  auto run = [](std::uint64_t seed) {
    tendril::SimHub hub{tendril::Random{seed}};
    std::ostringstream out;
    const seeds::HttpLoad load = seeds::hello_http_load(out, hub, 200);
    EXPECT_EQ(load.ok, 200);
    EXPECT_GE(load.elapsed, 100ms);
    EXPECT_LE(load.elapsed, 100ms + 200us);
    return load.elapsed;
  };
  EXPECT_EQ(run(3), run(3));
}
