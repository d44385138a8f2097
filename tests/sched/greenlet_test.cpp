// SPDX-License-Identifier: Apache-2.0
// Greenlet lifecycle and scheduling order on the simulated hub, pinned to gevent 22.10's order.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "tendril/sim.hpp"

using namespace std::chrono_literals;
using tendril::Greenlet;
using tendril::Ref;
using tendril::SimHub;
using Log = std::vector<std::string>;

namespace {

// Captures uncaught-exception reports instead of printing them.
struct Reports {
  std::vector<std::string> lines;
  void install(SimHub& hub) {
    hub.set_error_handler([this](Greenlet& g, std::exception_ptr e) {
      lines.push_back(g.describe() + " failed with " + tendril::describe_exception(e));
    });
  }
};

}  // namespace

// The seed's foo/bar: sleep(0) hands control back and forth in exactly gevent's order.
TEST(Greenlet, FooBarSleepZeroOrderMatchesGevent) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto foo = tendril::spawn("foo", [&] {
      log.push_back("Running in foo");
      tendril::sleep(0s);
      log.push_back("Explicit context switch to foo again");
    });
    auto bar = tendril::spawn("bar", [&] {
      log.push_back("Explicit context to bar");
      tendril::sleep(0s);
      log.push_back("Implicit context switch back to bar");
    });
    tendril::joinall({foo, bar});
  });
  EXPECT_EQ(
      log, (Log{"Running in foo", "Explicit context to bar", "Explicit context switch to foo again",
                "Implicit context switch back to bar"}));
}

// func1/func2/func3 sleep 3/2/2 s: equal deadlines fire in arming order; virtual time ends at 3 s.
TEST(Greenlet, SleepersWakeInDeadlineThenArmingOrder) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto f = [&](std::string name, std::chrono::seconds d) {
      return tendril::spawn(name, [&log, name, d] {
        tendril::sleep(d);
        log.push_back(name);
      });
    };
    tendril::joinall({f("func1", 3s), f("func2", 2s), f("func3", 2s)});
  });
  EXPECT_EQ(log, (Log{"func2", "func3", "func1"}));
  EXPECT_EQ(hub.now_ns(), 3'000'000'000);
}

// An hour of virtual sleeping costs no wall time and lands exactly on the deadline.
TEST(Greenlet, VirtualTimeAutojumps) {
  SimHub hub;
  tendril::run(hub, [] { tendril::sleep(1h); });
  EXPECT_EQ(hub.now_ns(), 3600LL * 1'000'000'000);
}

// sleep(0) is a callback and spawn_later(0) a timer: a later plain spawn runs first.
TEST(Greenlet, SpawnLaterZeroRunsAfterPlainSpawn) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto late = tendril::spawn_later(0s, [&] { log.push_back("later(0)"); });
    auto now = tendril::spawn([&] { log.push_back("spawn"); });
    tendril::joinall({late, now});
  });
  EXPECT_EQ(log, (Log{"spawn", "later(0)"}));
}

// A greenlet woken by a timer runs before the next due timer; callbacks it queues wait for them.
TEST(Greenlet, TimerWokenGreenletRunsBeforeNextTimerAndItsCallbacksAfter) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto a = tendril::spawn([&] {
      tendril::sleep(1s);
      log.push_back("a woke");
      tendril::spawn([&] { log.push_back("spawned by a"); });
    });
    auto b = tendril::spawn([&] {
      tendril::sleep(1s);
      log.push_back("b woke");
    });
    tendril::sleep(2s);
    tendril::joinall({a, b});
  });
  EXPECT_EQ(log, (Log{"a woke", "b woke", "spawned by a"}));
}

// get() returns the value; join() does not throw; get() rethrows the exception, reported once.
TEST(Greenlet, GetReturnsValueOrRethrowsAndFailuresAreReportedOnce) {
  SimHub hub;
  Reports reports;
  reports.install(hub);
  tendril::run(hub, [&] {
    auto ok = tendril::spawn([] { return 42; });
    auto bad = tendril::spawn("bad", []() -> int { throw std::runtime_error("boom"); });
    EXPECT_EQ(ok->get(), 42);
    EXPECT_TRUE(bad->join());
    EXPECT_TRUE(bad->ready());
    EXPECT_FALSE(bad->successful());
    EXPECT_THROW(bad->get(), std::runtime_error);
    EXPECT_THROW(bad->get(), std::runtime_error);
    EXPECT_TRUE(ok->successful());
    EXPECT_EQ(ok->value(), 42);
    EXPECT_FALSE(bad->value().has_value());
  });
  EXPECT_EQ(reports.lines,
            (std::vector<std::string>{"#3 'bad' failed with std::runtime_error: boom"}));
}

// The failure is reported at death, before joiners and links run.
TEST(Greenlet, FailureIsReportedBeforeLinksAndJoiners) {
  SimHub hub;
  Log log;
  hub.set_error_handler([&](Greenlet&, std::exception_ptr) { log.push_back("reported"); });
  tendril::run(hub, [&] {
    auto bad = tendril::spawn([] { throw std::logic_error("x"); });
    bad->link([&](Greenlet&) { log.push_back("link"); });
    bad->join();
    log.push_back("joined");
  });
  EXPECT_EQ(log, (Log{"reported", "link", "joined"}));
}

// Links and joiners run in registration order; link_value/link_exception filter on the outcome.
TEST(Greenlet, LinksAndJoinersRunInRegistrationOrder) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto target = tendril::spawn("target", [] { tendril::sleep(1s); });
    target->link([&](Greenlet& g) { log.push_back("link1 " + g.name()); });
    auto joiner = tendril::spawn("joiner", [&] {
      target->join();
      log.push_back("joiner woke");
    });
    tendril::sleep(0s);  // let joiner register its join
    target->link_value([&](Greenlet&) { log.push_back("link_value"); });
    target->link_exception([&](Greenlet&) { log.push_back("link_exception"); });
    target->link([&](Greenlet&) { log.push_back("link2"); });
    joiner->join();
  });
  EXPECT_EQ(log, (Log{"link1 target", "joiner woke", "link_value", "link2"}));
}

// A link added to an already-dead greenlet still fires, through the hub.
TEST(Greenlet, LinkOnDeadGreenletFires) {
  SimHub hub;
  int fired = 0;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([] {});
    g->join();
    g->link([&](Greenlet&) { ++fired; });
    EXPECT_EQ(fired, 0);  // not inside link(): a callback
    tendril::sleep(0s);
    EXPECT_EQ(fired, 1);
  });
}

// unlink() removes a link before it fires.
TEST(Greenlet, UnlinkRemovesLink) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([] {});
    auto id = g->link([&](Greenlet&) { log.push_back("removed"); });
    g->link([&](Greenlet&) { log.push_back("kept"); });
    g->unlink(id);
    g->join();
    tendril::sleep(0s);
  });
  EXPECT_EQ(log, (Log{"kept"}));
}

// started() is true from start until the greenlet finishes, then false; ready() after.
TEST(Greenlet, StartedReadyStates) {
  SimHub hub;
  tendril::run(hub, [&] {
    auto g = tendril::make_greenlet<tendril::detail::FnTask<void, std::function<void()>>>(
        "g", std::function<void()>([] { tendril::sleep(1s); }));
    EXPECT_FALSE(g->started());
    EXPECT_EQ(g->state(), Greenlet::State::created);
    g->start();
    EXPECT_TRUE(g->started());
    EXPECT_EQ(g->state(), Greenlet::State::scheduled);
    tendril::sleep(0s);
    EXPECT_TRUE(g->started());
    EXPECT_EQ(g->state(), Greenlet::State::running);
    EXPECT_STREQ(g->wait_reason(), "sleep");
    EXPECT_FALSE(g->ready());
    g->join();
    EXPECT_FALSE(g->started());
    EXPECT_TRUE(g->ready());
    EXPECT_TRUE(g->successful());
  });
}

// join(timeout) returns false when the greenlet outlives the timeout, at exactly that time.
TEST(Greenlet, JoinTimeout) {
  SimHub hub;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([] { tendril::sleep(10s); });
    EXPECT_FALSE(g->join(2s));
    EXPECT_EQ(tendril::now(), 2s);
    EXPECT_TRUE(g->join(9s));
    EXPECT_EQ(tendril::now(), 10s);
  });
}

// get(timeout) throws Timeout when the task is not done in time.
TEST(Greenlet, GetTimeoutThrowsTimeout) {
  SimHub hub;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([] {
      tendril::sleep(5s);
      return 7;
    });
    EXPECT_THROW(g->get(1s), tendril::Timeout);
    EXPECT_EQ(g->get(), 7);
  });
}

// joinall(timeout) gives up at the deadline and returns the greenlets that finished.
TEST(Greenlet, JoinallTimeout) {
  SimHub hub;
  tendril::run(hub, [&] {
    auto a = tendril::spawn([] { tendril::sleep(1s); });
    auto b = tendril::spawn([] { tendril::sleep(3s); });
    EXPECT_EQ(tendril::joinall({a, b}, 2s), (std::vector<Ref<Greenlet>>{a}));
    EXPECT_EQ(tendril::now(), 2s);
    EXPECT_TRUE(a->dead());
    EXPECT_FALSE(b->dead());
    EXPECT_EQ(tendril::joinall({a, b}), (std::vector<Ref<Greenlet>>{a, b}));
  });
}

// run() returns main's value and rethrows main's exception.
TEST(Greenlet, RunReturnsMainValueAndRethrows) {
  SimHub hub;
  EXPECT_EQ(tendril::run(hub, [] { return std::string("done"); }), "done");
  EXPECT_THROW(tendril::run(hub, []() -> int { throw std::out_of_range("main"); }),
               std::out_of_range);
}

// getcurrent() is the running greenlet; ids count in creation order with main as #1.
TEST(Greenlet, GetcurrentAndIds) {
  SimHub hub;
  tendril::run(hub, [&] {
    EXPECT_EQ(tendril::getcurrent()->describe(), "#1 'main'");
    Greenlet* seen = nullptr;
    auto g = tendril::spawn("child", [&] { seen = tendril::getcurrent(); });
    g->join();
    EXPECT_EQ(seen, g.get());
    EXPECT_EQ(g->id(), 2u);
  });
  EXPECT_EQ(tendril::getcurrent(), nullptr);
}

// spawn(f, args...) copies the arguments into the greenlet.
TEST(Greenlet, SpawnWithArguments) {
  SimHub hub;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([](int a, std::string b) { return b + std::to_string(a); }, 5,
                            std::string("n"));
    EXPECT_EQ(g->get(), "n5");
  });
}

namespace {

// The seed's MyNoopGreenlet: a subclass that overrides run().
class Noop : public tendril::Task<void> {
 public:
  explicit Noop(std::chrono::seconds s) : Task("noop"), seconds_(s) {}
  std::chrono::seconds seconds_;

 protected:
  void run() override { tendril::sleep(seconds_); }
};

}  // namespace

// A Greenlet subclass overriding run() starts, sleeps in virtual time and joins.
TEST(Greenlet, SubclassOverridingRun) {
  SimHub hub;
  tendril::run(hub, [&] {
    auto g = tendril::make_greenlet<Noop>(4s);
    g->start();
    g->join();
    EXPECT_TRUE(g->successful());
    EXPECT_EQ(tendril::now(), 4s);
  });
}

// Greenlets still alive when main returns are killed, so their destructors run.
TEST(Greenlet, LeftoverGreenletsAreKilledWhenMainReturns) {
  SimHub hub;
  Log log;
  struct Guard {
    Log* log;
    ~Guard() { log->push_back("unwound"); }
  };
  Ref<Greenlet> sleeper;
  tendril::run(hub, [&] {
    sleeper = tendril::spawn([&] {
      Guard guard{&log};
      tendril::sleep(1h);
      log.push_back("never");
    });
    tendril::sleep(0s);
  });
  EXPECT_EQ(log, (Log{"unwound"}));
  EXPECT_TRUE(sleeper->dead());
  EXPECT_TRUE(sleeper->killed());
  EXPECT_EQ(hub.live_greenlets(), 0u);
  EXPECT_EQ(hub.now_ns(), 0);
}

// Many greenlets run to completion and every stack returns to the pool.
TEST(Greenlet, ThousandsOfGreenletsReturnTheirStacks) {
  SimHub hub;
  long sum = 0;
  tendril::run(hub, [&] {
    std::vector<Ref<Greenlet>> gs;
    for (int i = 0; i < 5000; ++i) {
      gs.push_back(tendril::spawn([&sum, i] {
        tendril::sleep(std::chrono::milliseconds(i % 7));
        sum += i;
      }));
    }
    EXPECT_EQ(tendril::joinall(gs).size(), gs.size());
  });
  EXPECT_EQ(sum, 5000L * 4999 / 2);
  EXPECT_EQ(hub.stacks().live_stacks(), 0u);
}

// A joiner whose timeout and the target's death land in the same loop turn leaves no link
// behind: the joiner may be gone by the time the target's links run.
TEST(Greenlet, JoinTimeoutRacingDeathLeavesNoLink) {
  SimHub hub;
  tendril::run(hub, [&] {
    auto target = tendril::spawn([] { tendril::sleep(10ms); });
    bool joined = false;
    {
      auto joiner = tendril::spawn([&] { joined = target->join(10ms); });
      joiner->join();
    }  // the joiner is destroyed here, before target's links are notified
    tendril::sleep(0s);
    EXPECT_TRUE(joined);
    EXPECT_TRUE(target->dead());
  });
}

// The error handler runs on the hub's stack: it may kill another greenlet (non-blocking there).
TEST(Greenlet, ErrorHandlerRunsOnHubStackAndMayKill) {
  SimHub hub;
  Ref<Greenlet> victim;
  hub.set_error_handler([&](Greenlet&, std::exception_ptr) {
    EXPECT_EQ(tendril::getcurrent(), nullptr);
    victim->kill();  // from the hub's stack kill() cannot block: it queues the delivery
  });
  tendril::run(hub, [&] {
    victim = tendril::spawn([] { tendril::sleep(1h); });
    auto bad = tendril::spawn([] { throw std::runtime_error("x"); });
    bad->join();
    victim->join();
    EXPECT_TRUE(victim->killed());
  });
}

// Links of greenlets killed when main returns still fire.
TEST(Greenlet, LinksOfLeftoversFireAtTeardown) {
  SimHub hub;
  int fired = 0;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([] { tendril::sleep(1h); });
    g->link([&](Greenlet&) { ++fired; });
    tendril::sleep(0s);
  });
  EXPECT_EQ(fired, 1);
}

// sleep() of an enormous duration saturates instead of overflowing into a negative time.
TEST(Greenlet, HugeSleepSaturates) {
  SimHub hub;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([] { tendril::sleep(std::chrono::hours::max()); });
    tendril::sleep(1s);
    EXPECT_FALSE(g->dead());
    g->kill();
  });
  EXPECT_EQ(hub.now_ns(), 1'000'000'000);
}

// set_name() renames a greenlet (gevent's g.name = ...), and kill_nowait() is kill(block=False):
// it returns before the victim has unwound.
TEST(Greenlet, RenameAndKillNowait) {
  tendril::SimHub hub;
  std::vector<std::string> log;
  std::string report;
  tendril::run(hub, [&] {
    auto g = tendril::spawn("worker", [&] {
      try {
        tendril::sleep(1h);
      } catch (const tendril::GreenletExit&) {
        log.push_back("victim unwinds");
        throw;
      }
    });
    g->set_name("renamed");
    log.push_back(g->describe());
    tendril::sleep(0s);
    g->kill_nowait();
    log.push_back("kill_nowait returned");
    g->join();
    log.push_back(g->killed() ? "killed" : "alive");
  });
  EXPECT_EQ(log, (std::vector<std::string>{"#2 'renamed'", "kill_nowait returned", "victim unwinds",
                                           "killed"}));
}

// The default report prints the first 3 errors of a kind (the same text up to its numbers) in a
// run, then one line per kind when the run ends: a thousand failing greenlets print 3 + 1 lines.
TEST(ErrorReport, RepeatedErrorsArePrintedThreeTimesThenCounted) {
  tendril::SimHub hub;
  ::testing::internal::CaptureStderr();
  tendril::run(hub, [] {
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 1000; ++i) {
      gs.push_back(
          tendril::spawn([i] { throw std::runtime_error("bad input " + std::to_string(i)); }));
    }
    for (int i = 0; i < 4; ++i) {
      gs.push_back(tendril::spawn("other", [] { throw std::logic_error("another kind"); }));
    }
    tendril::joinall(gs);
  });
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "tendril: greenlet #2 failed with std::runtime_error: bad input 0\n"
            "tendril: greenlet #3 failed with std::runtime_error: bad input 1\n"
            "tendril: greenlet #4 failed with std::runtime_error: bad input 2\n"
            "tendril: greenlet #1002 'other' failed with std::logic_error: another kind\n"
            "tendril: greenlet #1003 'other' failed with std::logic_error: another kind\n"
            "tendril: greenlet #1004 'other' failed with std::logic_error: another kind\n"
            "tendril: and 997 more greenlets failed with the same error as greenlet #2 (up to "
            "its numbers; the first 3 of each kind are printed in full)\n"
            "tendril: and 1 more greenlets failed with the same error as greenlet #1002 'other' "
            "(up to its numbers; the first 3 of each kind are printed in full)\n");
  // A new run of the same hub counts afresh (greenlet ids go on: the hub was not reset).
  ::testing::internal::CaptureStderr();
  tendril::run(hub,
               [] { tendril::spawn([] { throw std::runtime_error("bad input 5"); })->join(); });
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "tendril: greenlet #1007 failed with std::runtime_error: bad input 5\n");
}
