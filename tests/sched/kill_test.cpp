// SPDX-License-Identifier: Apache-2.0
// kill(), killall() and GreenletExit delivery, pinned to gevent 22.10's semantics.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "tendril/sim.hpp"

using namespace std::chrono_literals;
using tendril::Greenlet;
using tendril::GreenletExit;
using tendril::Ref;
using tendril::SimHub;
using Log = std::vector<std::string>;

namespace {
struct Guard {
  Log* log;
  std::string what;
  ~Guard() { log->push_back(what); }
};
}  // namespace

// Killing a never-started greenlet: returns at once, it never runs, its links fire, and it counts
// as successful with GreenletExit.
TEST(Kill, NeverStartedGreenletNeverRunsButLinksFire) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([&] { log.push_back("ran"); });
    g->link([&](Greenlet&) { log.push_back("link"); });
    g->kill();
    log.push_back("kill returned");
    EXPECT_TRUE(g->dead());
    EXPECT_TRUE(g->successful());
    EXPECT_TRUE(g->killed());
    EXPECT_EQ(g->exception(), nullptr);
    EXPECT_EQ(hub.stacks().live_stacks(), 1u);  // main's only: the victim never took a stack
    tendril::sleep(0s);
  });
  EXPECT_EQ(log, (Log{"kill returned", "link"}));
}

// Killing a started greenlet raises GreenletExit at its blocking point: destructors run, and
// kill(block) resumes the killer right after the death, before the target's links.
TEST(Kill, StartedGreenletUnwindsAndKillerResumesBeforeLinks) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto g = tendril::spawn("victim", [&] {
      Guard guard{&log, "destructor"};
      tendril::sleep(1h);
      log.push_back("never");
    });
    g->link([&](Greenlet&) { log.push_back("link"); });
    tendril::sleep(0s);
    g->kill();
    log.push_back("kill returned");
    EXPECT_TRUE(g->dead());
    EXPECT_TRUE(g->successful());
    tendril::sleep(0s);
  });
  EXPECT_EQ(log, (Log{"destructor", "kill returned", "link"}));
  EXPECT_EQ(hub.now_ns(), 0);  // the 1 h timer was cancelled, not waited for
}

// kill(block=false) only queues the delivery.
TEST(Kill, NonBlockingKillQueuesDelivery) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([&] {
      Guard guard{&log, "unwound"};
      tendril::sleep(1s);
    });
    tendril::sleep(0s);
    g->kill(nullptr, false);
    log.push_back("after kill");
    EXPECT_FALSE(g->dead());
    g->join();
  });
  EXPECT_EQ(log, (Log{"after kill", "unwound"}));
}

// A custom exception given to kill() becomes the greenlet's failure, reported once.
TEST(Kill, CustomExceptionFailsTheGreenlet) {
  SimHub hub;
  std::vector<std::string> reports;
  hub.set_error_handler([&](Greenlet& g, std::exception_ptr e) {
    reports.push_back(g.describe() + ": " + tendril::describe_exception(e));
  });
  tendril::run(hub, [&] {
    auto g = tendril::spawn("w", [] { tendril::sleep(1s); });
    tendril::sleep(0s);
    g->kill(std::make_exception_ptr(std::runtime_error("stop")));
    EXPECT_FALSE(g->successful());
    EXPECT_THROW(g->get(), std::runtime_error);
  });
  EXPECT_EQ(reports, (std::vector<std::string>{"#2 'w': std::runtime_error: stop"}));
}

// A greenlet that catches GreenletExit survives the kill and goes on.
TEST(Kill, CatchingGreenletExitSurvives) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([&] {
      try {
        tendril::sleep(1s);
      } catch (const GreenletExit&) {
        log.push_back("caught");
      }
      tendril::sleep(1s);
      log.push_back("survived");
    });
    tendril::sleep(0s);
    g->kill(nullptr, true, 0s);
    EXPECT_FALSE(g->dead());
    g->join();
  });
  EXPECT_EQ(log, (Log{"caught", "survived"}));
}

// Killing a dead greenlet is a documented no-op.
TEST(Kill, KillingDeadGreenletIsNoop) {
  SimHub hub;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([] { return 1; });
    g->join();
    g->kill();
    EXPECT_TRUE(g->successful());
    EXPECT_EQ(g->get(), 1);
  });
}

// get() on a task killed by GreenletExit throws NoValue (there is no T to return).
TEST(Kill, GetOnKilledTaskThrowsNoValue) {
  SimHub hub;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([] {
      tendril::sleep(1s);
      return 1;
    });
    g->kill();
    EXPECT_THROW(g->get(), tendril::NoValue);
  });
}

// A greenlet blocked in join() that is killed leaves no dangling joiner behind.
TEST(Kill, KilledJoinerIsUnlinked) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto target = tendril::spawn([] { tendril::sleep(2s); });
    auto joiner = tendril::spawn([&] {
      Guard guard{&log, "joiner unwound"};
      target->join();
      log.push_back("never");
    });
    tendril::sleep(1s);
    joiner->kill();
    target->join();
    log.push_back("target done");
  });
  EXPECT_EQ(log, (Log{"joiner unwound", "target done"}));
}

// killall kills never-started ones at once and the rest in list order, then waits.
TEST(Kill, KillallInListOrder) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    std::vector<Ref<Greenlet>> gs;
    for (int i = 0; i < 3; ++i) {
      gs.push_back(tendril::spawn([&log, i] {
        Guard guard{&log, "g" + std::to_string(i)};
        tendril::sleep(1h);
      }));
    }
    tendril::sleep(0s);
    gs.push_back(tendril::spawn([&] { log.push_back("never ran"); }));
    tendril::killall(gs);
    log.push_back("killall returned");
    for (auto& g : gs) EXPECT_TRUE(g->dead());
  });
  EXPECT_EQ(log, (Log{"g0", "g1", "g2", "killall returned"}));
}

// A greenlet may kill itself: GreenletExit comes out of kill() and ends it successfully.
TEST(Kill, SelfKill) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([&] {
      Guard guard{&log, "self unwound"};
      tendril::getcurrent()->kill();
      log.push_back("never");
    });
    g->join();
    EXPECT_TRUE(g->killed());
  });
  EXPECT_EQ(log, (Log{"self unwound"}));
}
