// SPDX-License-Identifier: Apache-2.0
// eventlet's spawn_after/cancel and spawn_n, pinned to eventlet 0.33's observable order
// (tests/gevent_twins/eventlet_semantics.py prints eventlet's side of each test).
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "tendril/sim.hpp"

using namespace std::chrono_literals;
using tendril::SimHub;
using Log = std::vector<std::string>;

// v1: cancelled before its timer fires, it never runs; its timer is freed at once; waiting on it
// says it was killed (tendril: NoValue, where eventlet's wait() raises GreenletExit); a second
// cancel() does nothing.
TEST(Eventlet, SpawnAfterCancelledBeforeItsTimerNeverRuns) {
  SimHub hub;
  Log log;
  std::size_t timers_after_cancel = 99;
  tendril::run(hub, [&] {
    auto gt = tendril::spawn_after(10ms, [&] {
      log.push_back("ran");
      return 1;
    });
    EXPECT_TRUE(gt->cancel());
    timers_after_cancel = hub.pending_timers();
    tendril::sleep(50ms);
    try {
      gt->get();
      log.push_back("wait returned");
    } catch (const tendril::NoValue&) {
      log.push_back(std::string("wait raised NoValue, killed ") + (gt->killed() ? "yes" : "no"));
    }
    EXPECT_FALSE(gt->cancel());
    log.push_back("cancelled twice");
  });
  EXPECT_EQ(log, (Log{"wait raised NoValue, killed yes", "cancelled twice"}));
  EXPECT_EQ(timers_after_cancel, 0u);
}

// v2: once it has started, cancel() does nothing and the greenlet finishes.
TEST(Eventlet, CancelAfterItStartedDoesNothing) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto gt = tendril::spawn_after(10ms, [&] {
      log.push_back("started");
      tendril::sleep(20ms);
      log.push_back("finished");
      return 7;
    });
    tendril::sleep(15ms);
    EXPECT_FALSE(gt->cancel());
    log.push_back("result " + std::to_string(gt->get()));
  });
  EXPECT_EQ(log, (Log{"started", "finished", "result 7"}));
}

// v3: spawn_n starts like spawn, in call order, arguments bound, no handle.
TEST(Eventlet, SpawnNRunsInSpawnOrder) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::spawn_n([&] { log.push_back("n1"); });
    tendril::spawn([&] { log.push_back("s2"); });
    tendril::spawn_n([&](int x) { log.push_back("n3 " + std::to_string(x)); }, 5);
    tendril::spawn_n([] { return 42; });  // a result is dropped
    tendril::sleep(0s);
  });
  EXPECT_EQ(log, (Log{"n1", "s2", "n3 5"}));
}

// v4: a delay of zero or less starts it as spawn() does, in call order with plain spawns (eventlet
// runs a negative delay at once too).
TEST(Eventlet, SpawnAfterZeroOrNegativeStartsLikeSpawn) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::spawn_after(-1s, [&] { log.push_back("negative ran"); });
    tendril::spawn_after(0s, [&] { log.push_back("zero ran"); });
    tendril::spawn([&] { log.push_back("plain spawn"); });
    tendril::sleep(0s);
    tendril::sleep(10ms);
  });
  EXPECT_EQ(log, (Log{"negative ran", "zero ran", "plain spawn"}));
}

// An uncaught exception in a spawn_n greenlet is reported like any other greenlet's.
TEST(Eventlet, SpawnNErrorsAreReported) {
  SimHub hub;
  ::testing::internal::CaptureStderr();
  tendril::run(hub, [&] {
    tendril::spawn_n([] { throw std::runtime_error("lost in spawn_n"); });
    tendril::sleep(0s);
  });
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("std::runtime_error: lost in spawn_n"), std::string::npos) << err;
}
