// SPDX-License-Identifier: Apache-2.0
// Event, AsyncResult, TimeoutScope and the locks, pinned to gevent 22.10's observable order
// (tests/gevent_twins/primitives_semantics.py prints gevent's side of each test).
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "tendril/sim.hpp"

using namespace std::chrono_literals;
using tendril::Ref;
using tendril::SimHub;
using Log = std::vector<std::string>;

namespace {
std::string b(bool v) { return v ? "True" : "False"; }
}  // namespace

// e1: set() never switches; waiters wake in the order they started waiting.
TEST(Primitives, EventSetWakesWaitersInOrderWithoutSwitching) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Event ev;
    std::vector<Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 3; ++i) {
      gs.push_back(tendril::spawn([&, i] {
        ev.wait();
        log.push_back("w" + std::to_string(i));
      }));
    }
    tendril::sleep(0s);
    ev.set();
    log.push_back("after set");
    tendril::joinall(gs);
  });
  EXPECT_EQ(log, (Log{"after set", "w0", "w1", "w2"}));
}

// e2: set() then clear() before yielding still wakes the waiters, and their wait() is true.
TEST(Primitives, EventSetThenClearStillWakesWaiters) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Event ev;
    std::vector<Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 2; ++i) {
      gs.push_back(
          tendril::spawn([&, i] { log.push_back("w" + std::to_string(i) + " " + b(ev.wait())); }));
    }
    tendril::sleep(0s);
    ev.set();
    ev.clear();
    tendril::joinall(gs);
    log.push_back("is_set " + b(ev.is_set()));
  });
  EXPECT_EQ(log, (Log{"w0 True", "w1 True", "is_set False"}));
}

// e3: wait() on a set Event while its wakeup is queued waits behind the earlier waiters.
TEST(Primitives, EventWaitDuringWakeupQueuesBehindEarlierWaiters) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Event ev;
    std::vector<Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 2; ++i) {
      gs.push_back(tendril::spawn([&, i] {
        ev.wait();
        log.push_back("w" + std::to_string(i));
      }));
    }
    tendril::sleep(0s);
    ev.set();
    ev.wait();
    log.push_back("main");
    tendril::joinall(gs);
  });
  EXPECT_EQ(log, (Log{"w0", "w1", "main"}));
}

// e4: wait(timeout) returns false at exactly the timeout, in virtual time.
TEST(Primitives, EventWaitTimeout) {
  SimHub hub;
  tendril::run(hub, [&] {
    tendril::Event ev("never");
    EXPECT_FALSE(ev.wait(500ms));
    EXPECT_EQ(tendril::now(), 500ms);
    EXPECT_EQ(ev.waiter_count(), 0u);
  });
}

// a1: AsyncResult wakes getters in order with the value; set_exception makes get() rethrow.
TEST(Primitives, AsyncResultWakesGettersInOrder) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::AsyncResult<int> ar;
    std::vector<Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 2; ++i) {
      gs.push_back(tendril::spawn(
          [&, i] { log.push_back("g" + std::to_string(i) + " " + std::to_string(ar.get())); }));
    }
    tendril::sleep(0s);
    ar.set(42);
    log.push_back("after set");
    tendril::joinall(gs);
    tendril::AsyncResult<int> bad;
    bad.set_exception(std::make_exception_ptr(std::invalid_argument("no")));
    try {
      bad.get();
    } catch (const std::invalid_argument& e) {
      log.push_back(std::string("raised ") + e.what());
    }
    log.push_back("ready " + b(bad.ready()) + " successful " + b(bad.successful()));
  });
  EXPECT_EQ(log, (Log{"after set", "g0 42", "g1 42", "raised no", "ready True successful False"}));
}

// AsyncResult::get(timeout) throws Timeout when nothing is set in time; void results work.
TEST(Primitives, AsyncResultGetTimeoutAndVoid) {
  SimHub hub;
  tendril::run(hub, [&] {
    tendril::AsyncResult<std::string> ar;
    EXPECT_THROW(ar.get(1s), tendril::Timeout);
    EXPECT_EQ(tendril::now(), 1s);
    EXPECT_THROW(ar.get_nowait(), tendril::Timeout);
    tendril::AsyncResult<void> done;
    auto g = tendril::spawn([&] { done.get(); });
    tendril::sleep(0s);
    done.set();
    g->get();
    EXPECT_TRUE(done.successful());
    EXPECT_THROW(ar.set_exception(nullptr), tendril::UsageError);
  });
}

// t1: a TimeoutScope raises Timeout in the blocked call when it expires.
TEST(Primitives, TimeoutInterruptsBlockedCall) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    try {
      tendril::TimeoutScope t(1s);
      tendril::sleep(2s);
    } catch (const tendril::Timeout&) {
      log.push_back("timeout");
    }
    EXPECT_EQ(tendril::now(), 1s);
  });
  EXPECT_EQ(log, (Log{"timeout"}));
}

// t2: TimeoutScope(0) does not interrupt sleep(0): the sleep is a callback, the timeout a timer.
TEST(Primitives, TimeoutZeroDoesNotInterruptSleepZero) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    {
      tendril::TimeoutScope t(0s);
      tendril::sleep(0s);
      log.push_back("slept");
    }
    log.push_back("left");
  });
  EXPECT_EQ(log, (Log{"slept", "left"}));
}

// t3: a sleep ending in the same loop turn as a Timeout wins (the Timeout's timer is low priority).
TEST(Primitives, SleepEndingWithTimeoutWins) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    {
      tendril::TimeoutScope t(1s);
      tendril::sleep(1s);
      log.push_back("woke");
    }
    log.push_back("left");
  });
  EXPECT_EQ(log, (Log{"woke", "left"}));
}

// t4: nested scopes: the outer one firing inside the inner is recognisably the outer's.
TEST(Primitives, NestedTimeoutsIdentifyTheirSource) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::TimeoutScope outer(1s);
    try {
      tendril::TimeoutScope inner(2s);
      try {
        tendril::sleep(3s);
      } catch (const tendril::Timeout& t) {
        log.push_back(outer.raised(t) ? "inner caught outer" : "inner caught inner");
        throw;
      }
    } catch (const tendril::Timeout& t) {
      log.push_back(std::string("outer caught ") + (outer.raised(t) ? "outer" : "other"));
    }
    EXPECT_TRUE(outer.fired());
    EXPECT_FALSE(outer.pending());
  });
  EXPECT_EQ(log, (Log{"inner caught outer", "outer caught outer"}));
}

// t5: with_timeout returns the fallback when its own scope fires, else the result.
TEST(Primitives, WithTimeoutFallback) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    log.push_back(tendril::with_timeout(
        1s,
        [] {
          tendril::sleep(2s);
          return std::string("slow");
        },
        std::string("fallback")));
    log.push_back(tendril::with_timeout(2s, [] { return std::string("fast"); }));
    EXPECT_THROW(tendril::with_timeout(1s, [] { tendril::sleep(5s); }), tendril::Timeout);
  });
  EXPECT_EQ(log, (Log{"fallback", "fast"}));
}

// A TimeoutScope given an exception raises that exception instead.
TEST(Primitives, TimeoutScopeRaisesGivenException) {
  SimHub hub;
  tendril::run(hub, [&] {
    tendril::TimeoutScope t(1s, std::make_exception_ptr(std::runtime_error("too slow")));
    EXPECT_THROW(tendril::Event().wait(), std::runtime_error);
  });
}

// s1: waiters acquire a Semaphore in the order they started waiting.
TEST(Primitives, SemaphoreWaitersAcquireInOrder) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Semaphore sem(1);
    sem.acquire();
    std::vector<Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 3; ++i) {
      gs.push_back(tendril::spawn([&, i] {
        sem.acquire();
        log.push_back("w" + std::to_string(i) + " got it");
        tendril::sleep(0s);
        sem.release();
      }));
    }
    tendril::sleep(0s);
    log.push_back("releasing");
    sem.release();
    tendril::joinall(gs);
    log.push_back("counter " + std::to_string(sem.counter()));
  });
  EXPECT_EQ(log, (Log{"releasing", "w0 got it", "w1 got it", "w2 got it", "counter 1"}));
}

// s2: a releaser that re-acquires before yielding keeps the permit (barging).
TEST(Primitives, SemaphoreBargingReleaserKeepsPermit) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Semaphore sem(1);
    sem.acquire();
    auto g = tendril::spawn([&] {
      sem.acquire();
      log.push_back("waiter got it");
    });
    tendril::sleep(0s);
    sem.release();
    log.push_back("reacquired " + b(sem.acquire(false)));
    tendril::sleep(0s);
    log.push_back("waiter dead " + b(g->dead()));
    sem.release();
    g->join();
  });
  EXPECT_EQ(log, (Log{"reacquired True", "waiter dead False", "waiter got it"}));
}

// s3: releasing a BoundedSemaphore or Lock beyond its bound is a UsageError.
TEST(Primitives, BoundedSemaphoreOverReleaseIsError) {
  SimHub hub;
  tendril::run(hub, [&] {
    tendril::BoundedSemaphore bs(1, "pool");
    EXPECT_THROW(bs.release(), tendril::UsageError);
    tendril::Lock lock;
    EXPECT_THROW(lock.release(), tendril::UsageError);
    EXPECT_THROW(tendril::Semaphore(-1), tendril::UsageError);
    EXPECT_EQ(bs.counter(), 1);
  });
}

// r1: an RLock is reentrant for its owner; another greenlet can neither release nor take it.
TEST(Primitives, RLockIsReentrantAndOwnerChecked) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::RLock lock;
    lock.acquire();
    lock.acquire();
    tendril::spawn([&] {
      try {
        lock.release();
      } catch (const tendril::UsageError&) {
        log.push_back("non-owner release refused");
      }
      log.push_back("other acquires " + b(lock.acquire(true, 100ms)));
    })->join();
    lock.release();
    lock.release();
    tendril::spawn([&] {
      log.push_back("other acquires " + b(lock.acquire(true, 100ms)));
      lock.release();
    })->join();
  });
  EXPECT_EQ(log, (Log{"non-owner release refused", "other acquires False", "other acquires True"}));
}

// A killed acquirer leaks no permit, and std::lock_guard works as the RAII guard.
TEST(Primitives, KilledAcquirerLeaksNoPermitAndGuardsWork) {
  SimHub hub;
  tendril::run(hub, [&] {
    tendril::Lock lock("guarded");
    {
      std::lock_guard<tendril::Lock> guard(lock);
      auto waiter = tendril::spawn([&] { std::lock_guard<tendril::Lock> g2(lock); });
      tendril::sleep(0s);
      EXPECT_EQ(lock.waiter_count(), 1u);
      waiter->kill();
      EXPECT_EQ(lock.waiter_count(), 0u);
    }
    EXPECT_FALSE(lock.locked());
    EXPECT_TRUE(lock.try_lock());
    lock.unlock();
  });
}

// A greenlet blocked on an Event shows in the deadlock report with the Event's name.
TEST(Primitives, DeadlockReportNamesTheEvent) {
  SimHub hub;
  try {
    tendril::run(hub, [] {
      tendril::Event ev("config loaded");
      ev.wait();
    });
    ADD_FAILURE() << "no Deadlock";
  } catch (const tendril::Deadlock& e) {
    EXPECT_NE(
        std::string(e.what()).find("#1 'main' blocked in Event.wait on Event#1 'config loaded'"),
        std::string::npos)
        << e.what();
  }
}

// An Event destroyed while a greenlet waits on it leaves the waiter blocked (then killed at the
// end of run), never touching the dead Event.
TEST(Primitives, EventDestroyedWithWaiterIsSafe) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto ev = std::make_unique<tendril::Event>("short-lived");
    tendril::spawn([&] {
      try {
        ev->wait();
      } catch (const tendril::GreenletExit&) {
        log.push_back("waiter killed");
        throw;
      }
    });
    tendril::sleep(0s);
    ev.reset();
  });
  EXPECT_EQ(log, (Log{"waiter killed"}));
}

// Blocking primitives refuse negative timeouts and calls from the hub's own stack.
TEST(Primitives, BadInput) {
  SimHub hub;
  tendril::run(hub, [&] {
    tendril::Event ev;
    EXPECT_THROW(ev.wait(-1ms), tendril::UsageError);
    EXPECT_THROW(tendril::TimeoutScope(-1s), tendril::UsageError);
    tendril::Semaphore sem(0);
    EXPECT_THROW(sem.acquire(true, -5ns), tendril::UsageError);
    auto g = tendril::spawn([] {});
    std::string message;
    g->rawlink([&](tendril::Greenlet&) {
      try {
        ev.wait();
      } catch (const tendril::UsageError& e) {
        message = e.what();
      }
    });
    g->join();
    tendril::sleep(0s);
    EXPECT_NE(message.find("Event::wait: called on the hub's own stack"), std::string::npos)
        << message;
  });
  EXPECT_THROW(tendril::TimeoutScope(1s), tendril::UsageError);
}

// A waiter woken by set() destroys the Event while later waiters are still to be woken in the
// same pass: the pass stops without touching the dead Event (ASan checks it) and the later
// waiter stays blocked until it is killed.
TEST(Primitives, WaiterThatDestroysTheEventEndsTheNotification) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto ev = std::make_unique<tendril::Event>("short-lived");
    auto first = tendril::spawn([&] {
      ev->wait();
      ev.reset();
      log.push_back("first destroyed the event");
    });
    auto second = tendril::spawn([&] {
      try {
        ev->wait();
        log.push_back("second woke");
      } catch (const tendril::GreenletExit&) {
        log.push_back("second killed");
        throw;
      }
    });
    tendril::sleep(0s);
    ev->set();
    tendril::sleep(0s);
    log.push_back("main after the pass");
    EXPECT_FALSE(second->dead());
    second->kill();
  });
  EXPECT_EQ(log, (Log{"first destroyed the event", "main after the pass", "second killed"}));
}

// n1: gevent's unlink(): the last link gone while the notification is queued cancels it, so a
// link added afterwards waits for a new notification, behind what was queued meanwhile.
TEST(Primitives, UnlinkingTheLastLinkCancelsTheQueuedNotification) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Event ev;
    const tendril::LinkId first = ev.rawlink([&] { log.push_back("cb1"); });
    ev.set();
    ev.unlink(first);
    tendril::spawn([&] { log.push_back("g"); });
    ev.rawlink([&] { log.push_back("cb2"); });
    tendril::sleep(0s);
    tendril::sleep(0s);
  });
  EXPECT_EQ(log, (Log{"g", "cb2"}));
}

// n2: the same when the last waiter leaves by being killed while the notification is queued.
TEST(Primitives, AKilledLastWaiterCancelsTheQueuedNotification) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Event ev;
    auto w = tendril::spawn([&] {
      try {
        ev.wait();
      } catch (const tendril::GreenletExit&) {
        log.push_back("w killed");
        ev.rawlink([&] { log.push_back("cb2"); });
        throw;
      }
    });
    tendril::sleep(0s);
    w->kill(nullptr, false);
    ev.set();
    tendril::spawn([&] { log.push_back("g"); });
    tendril::sleep(0s);
    log.push_back("main");
    tendril::sleep(0s);
    tendril::sleep(0s);
  });
  EXPECT_EQ(log, (Log{"w killed", "g", "main", "cb2"}));
}
