// SPDX-License-Identifier: Apache-2.0
// link() and rawlink(), unstarted tasks, a killed greenlet's GreenletExit, joinall's result and
// raise_error, and SystemExit: each pinned to gevent 22.10 (twins in core_semantics.py).
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "tendril/sim.hpp"

using namespace std::chrono_literals;
using tendril::ErrorOrigin;
using tendril::Greenlet;
using tendril::Ref;
using tendril::SimHub;
using tendril::Task;
using Log = std::vector<std::string>;

namespace {

const char* origin_name(ErrorOrigin origin) {
  switch (origin) {
    case ErrorOrigin::greenlet:
      return "greenlet";
    case ErrorOrigin::link:
      return "link";
    case ErrorOrigin::rawlink:
      return "rawlink";
  }
  return "?";
}

// MyExit is a GreenletExit of the user's own, as gevent allows.
struct MyExit : tendril::GreenletExit {
  const char* what() const noexcept override { return "MyExit"; }
};

}  // namespace

// t_link1: link() runs its callback in a new greenlet that may block; rawlink() runs on the hub;
// all fire in registration order, each link running until it blocks before the next fires.
TEST(Link, LinkRunsInItsOwnGreenletAndMayBlock) {
  SimHub hub;
  Log log;
  std::vector<std::string> reports;
  hub.set_error_handler([&](Greenlet& g, std::exception_ptr e, ErrorOrigin origin) {
    reports.push_back(std::string(origin_name(origin)) + " " + g.describe() + " of " +
                      (g.link_of() ? g.link_of()->describe() : "-") + ": " +
                      tendril::describe_exception(e));
  });
  tendril::run(hub, [&] {
    auto g = tendril::spawn("a", [&] {
      log.push_back("a runs");
      tendril::sleep(0s);
      log.push_back("a ends");
      return 1;
    });
    Greenlet* a = g.get();
    g->link([&](Greenlet&) {
      log.push_back("l1 start");
      tendril::sleep(50ms);
      log.push_back("l1 end");
    });
    g->rawlink([&](Greenlet&) { log.push_back("raw l2"); });
    g->link([&](Greenlet&) {
      log.push_back("l3 start");
      throw std::invalid_argument("boom");
    });
    g->link_value([&](Greenlet& source) {
      Greenlet* me = tendril::getcurrent();
      log.push_back(
          std::string("lv in its own greenlet ") +
          (me != nullptr && me != a && &source == a && me->link_of() == a ? "True" : "False"));
    });
    tendril::sleep(0s);
    tendril::spawn([&] { log.push_back("other runs"); });
    g->join();
    log.push_back("joined");
    tendril::sleep(200ms);
  });
  EXPECT_EQ(log, (Log{"a runs", "a ends", "other runs", "l1 start", "raw l2", "l3 start",
                      "lv in its own greenlet True", "joined", "l1 end"}));
  // main #1, a #2, other #3, then the link greenlets in the order they fired: #4 l1, #5 l3, #6 lv.
  EXPECT_EQ(reports, (Log{"link #5 of #2 'a': std::invalid_argument: boom"}));
}

// The default report tells a failing link and a failing rawlink from a failing greenlet.
TEST(Link, DefaultReportNamesTheLinkedGreenlet) {
  SimHub hub;
  testing::internal::CaptureStderr();
  tendril::run(hub, [&] {
    auto g = tendril::spawn("a", [] {});
    g->link([](Greenlet&) { throw std::runtime_error("in link"); });
    g->rawlink([](Greenlet&) { throw std::runtime_error("in rawlink"); });
    auto bad = tendril::spawn("b", [] { throw std::runtime_error("in body"); });
    tendril::joinall({g, bad});
    tendril::sleep(0s);
  });
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "tendril: greenlet #3 'b' failed with std::runtime_error: in body\n"
            "tendril: a link of #2 'a' (greenlet #4) failed with std::runtime_error: in link\n"
            "tendril: a rawlink of #2 'a' failed with std::runtime_error: in rawlink\n");
}

// A link added to a dead greenlet runs in its own greenlet too, from a callback.
TEST(Link, LinkOnDeadGreenletRunsInANewGreenlet) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([] {});
    g->join();
    g->link([&](Greenlet& source) {
      tendril::sleep(1s);  // would throw UsageError on the hub's stack
      log.push_back("link of #" + std::to_string(source.id()) + " ran in #" +
                    std::to_string(tendril::getcurrent()->id()));
    });
    log.push_back("linked");
    tendril::sleep(2s);
  });
  EXPECT_EQ(log, (Log{"linked", "link of #2 ran in #3"}));
}

// t_task1: make_task() makes a greenlet from a function without starting it (gevent's
// Greenlet(f, *args)); start(), start_later() and kill() then act on it.
TEST(Link, UnstartedTaskFromFunction) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto f = [&](int x) {
      log.push_back("ran " + std::to_string(x));
      return x * 2;
    };
    Ref<Task<int>> g = tendril::make_task(f, 21);
    tendril::sleep(0s);
    log.push_back(std::string("started ") + (g->started() ? "True" : "False"));
    g->start();
    g->join();
    log.push_back("value " + std::to_string(g->get()));
    auto h = tendril::make_task("h", f, 5);
    EXPECT_EQ(h->name(), "h");
    h->start_later(1s);
    tendril::sleep(500ms);
    log.push_back("not yet");
    h->join();
    log.push_back("later value " + std::to_string(*h->value()));
    auto k = tendril::make_task(f, 7);
    k->kill();
    log.push_back(std::string("killed unstarted ") + (k->dead() ? "True" : "False") + " " +
                  (k->exit_value() ? tendril::describe_exception(k->exit_value()) : "none"));
  });
  EXPECT_EQ(log, (Log{"started False", "ran 21", "value 42", "not yet", "ran 5", "later value 10",
                      "killed unstarted True GreenletExit"}));
}

// t_exitval: a killed greenlet keeps the GreenletExit that killed it (gevent's value), succeeds,
// and has no exception; get() throws NoValue, since a typed value cannot hold it.
TEST(Link, KilledGreenletsValueIsItsGreenletExit) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([] { tendril::sleep(1s); });
    tendril::sleep(0s);
    g->kill(std::make_exception_ptr(MyExit()));
    const auto line = [&](Greenlet& x) {
      return tendril::describe_exception(x.exit_value()) + " " +
             (x.successful() ? "True" : "False") + " " +
             (x.exception() ? tendril::describe_exception(x.exception()) : "None");
    };
    log.push_back(line(*g));
    ASSERT_TRUE(g->exit_value());
    try {
      std::rethrow_exception(g->exit_value());
    } catch (const MyExit& e) {
      log.push_back(std::string("rethrown as ") + e.what());
    }
    auto h = tendril::spawn([] { tendril::sleep(1s); });
    tendril::sleep(0s);
    h->kill();
    log.push_back(line(*h));
    auto n = tendril::spawn([] { return 3; });
    n->join();
    log.push_back(n->exit_value() ? "finished has an exit value" : "finished has none");
    try {
      auto t = tendril::spawn([] {
        tendril::sleep(1s);
        return 1;
      });
      tendril::sleep(0s);
      t->kill();
      t->get();
    } catch (const tendril::NoValue& e) {
      log.push_back(e.what());
    }
  });
  EXPECT_EQ(log, (Log{"MyExit True None", "rethrown as MyExit", "GreenletExit True None",
                      "finished has none", "tendril: #5 was killed and has no value"}));
}

// t_joinall1: joinall() returns the finished greenlets, with the list's element type: those dead
// already first in list order, then in the order they died.
TEST(Link, JoinallReturnsTheFinishedInGeventsOrder) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto f = [](int i, tendril::Duration d) {
      tendril::sleep(d);
      return i;
    };
    auto first = tendril::spawn(f, 9, 0ms);
    first->join();
    std::vector<Ref<Task<int>>> gs = {tendril::spawn(f, 0, 300ms), tendril::spawn(f, 2, 200ms),
                                      first, tendril::spawn(f, 1, 100ms)};
    const auto values = [](const std::vector<Ref<Task<int>>>& done) {
      std::string out;
      for (const auto& g : done) out += (out.empty() ? "" : ", ") + std::to_string(g->get());
      return "[" + out + "]";
    };
    auto done = tendril::joinall(gs, 250ms);
    static_assert(std::is_same_v<decltype(done), std::vector<Ref<Task<int>>>>);
    log.push_back("done " + values(done));
    log.push_back("rest " + values(tendril::joinall(gs)));
    EXPECT_EQ(tendril::now(), 300ms);
  });
  EXPECT_EQ(log, (Log{"done [9, 1, 2]", "rest [2, 9, 1, 0]"}));
}

// t_joinall2: joinall(raise_error) rethrows the first failure in order of death, as it happens.
TEST(Link, JoinallRaiseErrorRethrowsTheFirstFailureAsItHappens) {
  SimHub hub;
  hub.set_error_handler([](Greenlet&, std::exception_ptr) {});
  Log log;
  tendril::run(hub, [&] {
    auto f = [](int i, tendril::Duration d) {
      tendril::sleep(d);
      return i;
    };
    auto boom = [](tendril::Duration d) -> int {
      tendril::sleep(d);
      throw std::invalid_argument("boom " + std::to_string(d.count() / 1'000'000) + " ms");
    };
    std::vector<Ref<Task<int>>> gs = {tendril::spawn(f, 0, 300ms), tendril::spawn(boom, 100ms),
                                      tendril::spawn(boom, 200ms)};
    try {
      tendril::joinall(gs, std::nullopt, true);
      log.push_back("no error");
    } catch (const std::invalid_argument& e) {
      std::string dead;
      for (const auto& g : gs)
        dead += std::string(dead.empty() ? "" : ", ") + (g->dead() ? "True" : "False");
      log.push_back(std::string("raised ") + e.what() + ", dead [" + dead + "]");
      EXPECT_EQ(tendril::now(), 100ms);
    }
    tendril::joinall(gs);
  });
  EXPECT_EQ(log, (Log{"raised boom 100 ms, dead [False, True, False]"}));
}

// killall() takes typed lists too.
TEST(Link, KillallTakesTypedLists) {
  SimHub hub;
  tendril::run(hub, [&] {
    std::vector<Ref<Task<int>>> gs;
    for (int i = 0; i < 3; ++i) {
      gs.push_back(tendril::spawn([] {
        tendril::sleep(1s);
        return 1;
      }));
    }
    tendril::sleep(0s);
    tendril::killall(gs);
    for (const auto& g : gs) EXPECT_TRUE(g->killed());
    EXPECT_EQ(tendril::now(), 0s);
  });
}

// t_sysexit: SystemExit raised in a greenlet is not reported; it reaches main at once, at the
// call main is blocked in (a sleep, a join), before any other ready greenlet runs.
TEST(Link, SystemExitInAGreenletReachesMainAtItsBlockingCall) {
  SimHub hub;
  Log log;
  std::vector<std::string> reports;
  hub.set_error_handler([&](Greenlet& g, std::exception_ptr) { reports.push_back(g.describe()); });
  tendril::run(hub, [&] {
    auto bad = [&] {
      log.push_back("bad exits");
      throw tendril::SystemExit(3);
    };
    auto g = tendril::spawn(bad);
    tendril::spawn([&] {
      log.push_back("other runs");
      tendril::sleep(0s);
      log.push_back("other again");
    });
    g->link([&](Greenlet&) { log.push_back("link fired"); });
    try {
      tendril::sleep(1s);
      log.push_back("slept");
    } catch (const tendril::SystemExit& e) {
      log.push_back("main got SystemExit " + std::to_string(e.code()) +
                    " successful=" + (g->successful() ? "True" : "False"));
      // Differs from gevent on purpose: gevent switches to main while the greenlet is still
      // dying (g.dead is False here); tendril finishes its death first.
      EXPECT_TRUE(g->dead());
      EXPECT_EQ(tendril::describe_exception(g->exception()), "SystemExit(3)");
    }
    auto g2 = tendril::spawn(bad);
    try {
      g2->join();
      log.push_back("joined");
    } catch (const tendril::SystemExit& e) {
      log.push_back("main got SystemExit " + std::to_string(e.code()) + " in join");
    }
    tendril::sleep(0s);
  });
  EXPECT_EQ(log, (Log{"bad exits", "main got SystemExit 3 successful=False", "other runs",
                      "link fired", "bad exits", "main got SystemExit 3 in join", "other again"}));
  EXPECT_EQ(reports, Log{});
}

// SystemExit that main does not catch leaves run() for its caller to exit with.
TEST(Link, UncaughtSystemExitLeavesRun) {
  SimHub hub;
  int code = -1;
  try {
    tendril::run(hub, [] {
      tendril::spawn([] { throw tendril::SystemExit(7); });
      tendril::sleep(1s);
    });
  } catch (const tendril::SystemExit& e) {
    code = e.code();
  }
  EXPECT_EQ(code, 7);
}
