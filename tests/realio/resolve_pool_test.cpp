// SPDX-License-Identifier: Apache-2.0
// LibevHub's blocking-call pool grows on demand: many greenlets resolving names at once run their
// lookups at once (up to LibevOptions::threads), so they take the time of one.
//
// This program defines getaddrinfo(), which comes before libc's for every caller in it (the
// pool's threads included). Names ending in ".gate.test" stand for a slow DNS server: each lookup
// waits at a gate until `gate_width` lookups are in flight together (or 5 s pass), then resolves
// to 127.0.0.1; the most lookups seen in flight at once is what the tests read. Other names go to
// libc's getaddrinfo.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <netdb.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tendril/realio.hpp"
#include "tendril/sched.hpp"

namespace {

using namespace std::chrono_literals;

struct Gate {
  std::mutex mutex;
  std::condition_variable changed;
  int width = 0;  // lookups that open the gate
  int in_flight = 0;
  int most_in_flight = 0;
  int timed_out = 0;  // lookups that gave up waiting for the gate
  bool open = false;
  std::set<std::thread::id> threads;  // the threads the lookups ran on
} gate;

void reset_gate(int width) {
  std::lock_guard<std::mutex> lock(gate.mutex);
  gate.width = width;
  gate.in_flight = gate.most_in_flight = gate.timed_out = 0;
  gate.open = false;
  gate.threads.clear();
}

using GetaddrinfoFn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);

GetaddrinfoFn libc_getaddrinfo() {
  static const auto fn = reinterpret_cast<GetaddrinfoFn>(::dlsym(RTLD_NEXT, "getaddrinfo"));
  return fn;
}

// threads_now() is how many threads this process has (/proc/self/task).
int threads_now() {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    (void)entry;
    ++n;
  }
  return n;
}

bool gated(const char* node) {
  static constexpr char suffix[] = ".gate.test";
  const std::size_t n = node == nullptr ? 0 : std::strlen(node);
  return n >= sizeof suffix - 1 && std::strcmp(node + n - (sizeof suffix - 1), suffix) == 0;
}

}  // namespace

extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                           addrinfo** res) {
  if (!gated(node)) return libc_getaddrinfo()(node, service, hints, res);
  {
    std::unique_lock<std::mutex> lock(gate.mutex);
    ++gate.in_flight;
    gate.threads.insert(std::this_thread::get_id());
    gate.most_in_flight = std::max(gate.most_in_flight, gate.in_flight);
    if (gate.in_flight >= gate.width) gate.open = true;
    gate.changed.notify_all();
    if (!gate.changed.wait_for(lock, 5s, [] { return gate.open; })) ++gate.timed_out;
    --gate.in_flight;
  }
  return libc_getaddrinfo()("127.0.0.1", service, hints, res);
}

namespace {

// resolve_at_once() starts n greenlets that each resolve "<i>.gate.test" on hub, and returns
// what each got (or its error's text); *started is how many threads the process gained.
std::vector<std::string> resolve_at_once(tendril::LibevHub& hub, int n, int* started) {
  std::vector<std::string> got(static_cast<std::size_t>(n));
  const int before = threads_now();
  tendril::run(hub, [&] {
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < n; ++i) {
      gs.push_back(tendril::spawn([&got, i] {
        try {
          got[static_cast<std::size_t>(i)] = tendril::resolve(std::to_string(i) + ".gate.test");
        } catch (const std::exception& e) {
          got[static_cast<std::size_t>(i)] = e.what();
        }
      }));
    }
    for (auto& g : gs) g->join();
    *started = threads_now() - before;
  });
  return got;
}

}  // namespace

// 32 greenlets resolve at once on a LibevHub with the default pool: all 32 lookups are in flight
// together (the gate opens only when they are), none waits for another.
TEST(LibevPool, ManyGreenletsResolvingAtOnceTakeTheTimeOfOne) {
  reset_gate(32);
  tendril::LibevHub hub;
  int started = 0;
  const std::vector<std::string> got = resolve_at_once(hub, 32, &started);
  EXPECT_EQ(got, std::vector<std::string>(32, "127.0.0.1"));
  EXPECT_EQ(started, 32);
  std::lock_guard<std::mutex> lock(gate.mutex);
  EXPECT_EQ(gate.most_in_flight, 32);
  EXPECT_EQ(gate.timed_out, 0);
}

// The pool holds at most LibevOptions::threads threads: with 3, eight lookups at once are never
// more than 3 in flight, and all of them finish (the gate opens when the first 3 are in).
TEST(LibevPool, ThePoolStopsGrowingAtItsSize) {
  reset_gate(3);
  tendril::LibevOptions options;
  options.threads = 3;
  tendril::LibevHub hub(options);
  int started = 0;
  const std::vector<std::string> got = resolve_at_once(hub, 8, &started);
  EXPECT_EQ(got, std::vector<std::string>(8, "127.0.0.1"));
  EXPECT_EQ(started, 3);
  std::lock_guard<std::mutex> lock(gate.mutex);
  EXPECT_EQ(gate.most_in_flight, 3);
  EXPECT_EQ(gate.timed_out, 0);
}

// Threads start only when needed: with the default pool (64), lookups made one after the other
// start one thread, and all run on it.
TEST(LibevPool, SequentialLookupsRunOnOneThread) {
  reset_gate(1);
  tendril::LibevHub hub;
  std::vector<std::string> got;
  const int before = threads_now();
  int started = 0;
  tendril::run(hub, [&] {
    for (int i = 0; i < 5; ++i) got.push_back(tendril::resolve(std::to_string(i) + ".gate.test"));
    started = threads_now() - before;
  });
  EXPECT_EQ(got, std::vector<std::string>(5, "127.0.0.1"));
  EXPECT_EQ(started, 1);
  std::lock_guard<std::mutex> lock(gate.mutex);
  EXPECT_EQ(gate.threads.size(), 1u);
  EXPECT_EQ(gate.most_in_flight, 1);
  EXPECT_EQ(gate.timed_out, 0);
}
