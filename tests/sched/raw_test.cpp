// SPDX-License-Identifier: Apache-2.0
// RawGreenlet: the greenlet library's symmetric switch, with no hub.
#include <gtest/gtest.h>

#include <any>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "tendril/sched.hpp"

using tendril::RawGreenlet;
using namespace std::string_literals;

namespace {

// show() renders a passed value as tests/gevent_twins/raw_semantics.py prints it.
std::string show(const std::any& value) {
  if (!value.has_value()) return "nothing";
  if (const int* i = std::any_cast<int>(&value)) return std::to_string(*i);
  if (const std::string* s = std::any_cast<std::string>(&value)) return *s;
  return std::string("a ") + value.type().name();
}

// is_greenlet_exit() is true when value holds the exception_ptr of a GreenletExit.
bool is_greenlet_exit(const std::any& value) {
  const std::exception_ptr* error = std::any_cast<std::exception_ptr>(&value);
  if (error == nullptr || !*error) return false;
  try {
    std::rethrow_exception(*error);
  } catch (const tendril::GreenletExit&) {
    return true;
  } catch (...) {
    return false;
  }
}

// usage_reason() is a UsageError's message without the "tendril::RawGreenlet::set_parent: " head.
std::string usage_reason(const tendril::UsageError& e) {
  const std::string head = "tendril::RawGreenlet::set_parent: ";
  const std::string what = e.what();
  EXPECT_EQ(what.substr(0, head.size()), head);
  return what.substr(head.size());
}

}  // namespace

// The seed's gr1/gr2 example prints 12, 56, 34; 78 never runs because gr2 is never resumed.
TEST(RawGreenlet, SeedSwitchExample) {
  std::vector<int> out;
  RawGreenlet* gr2_ptr = nullptr;
  RawGreenlet* gr1_ptr = nullptr;
  RawGreenlet gr1([&] {
    out.push_back(12);
    gr2_ptr->switch_to();
    out.push_back(34);
  });
  RawGreenlet gr2([&] {
    out.push_back(56);
    gr1_ptr->switch_to();
    out.push_back(78);
  });
  gr1_ptr = &gr1;
  gr2_ptr = &gr2;
  gr1.switch_to();
  EXPECT_EQ(out, (std::vector<int>{12, 56, 34}));
  EXPECT_TRUE(gr1.dead());
  EXPECT_FALSE(gr2.dead());
  EXPECT_EQ(RawGreenlet::current(), &RawGreenlet::main());
}

// An exception escaping a raw greenlet propagates to its parent's switch; switching to the dead
// greenlet then goes to its parent, the running main greenlet, and returns the value at once.
TEST(RawGreenlet, ExceptionPropagatesToParent) {
  RawGreenlet g([] { throw std::runtime_error("raw boom"); });
  EXPECT_THROW(g.switch_to(), std::runtime_error);
  EXPECT_TRUE(g.dead());
  EXPECT_EQ(show(g.switch_to(7)), "7");
}

// Destroying an unfinished raw greenlet unwinds its stack, running destructors.
TEST(RawGreenlet, DestroyingUnfinishedUnwinds) {
  bool unwound = false;
  {
    struct Guard {
      bool* flag;
      ~Guard() { *flag = true; }
    };
    RawGreenlet* outer_ptr = nullptr;
    RawGreenlet* inner_ptr = nullptr;
    // outer starts inner; inner switches back to outer, which finishes and returns to the thread:
    // inner stays suspended, holding a Guard.
    RawGreenlet outer([&] { inner_ptr->switch_to(); });
    RawGreenlet inner([&] {
      Guard guard{&unwound};
      outer_ptr->switch_to();
    });
    outer_ptr = &outer;
    inner_ptr = &inner;
    outer.switch_to();
    EXPECT_TRUE(outer.dead());
    EXPECT_FALSE(inner.dead());
    EXPECT_FALSE(unwound);
  }
  EXPECT_TRUE(unwound);
}

// Twins of tests/gevent_twins/raw_semantics.py: each test builds the same log as the block named
// in its comment (rN), and raw_semantics.expected holds what the greenlet library printed.

// r1: the first switch passes fn's argument, switches pass values both ways, fn's return ends it.
TEST(RawGreenlet, ValuesInAndOut) {
  std::vector<std::string> log;
  RawGreenlet& main = RawGreenlet::main();
  RawGreenlet g([&](std::any x) -> std::any {
    const int got = std::any_cast<int>(x);
    log.push_back("f got " + std::to_string(got));
    std::any y = main.switch_to(got + 1);
    log.push_back("f resumed with " + show(y));
    return "f returned"s;
  });
  log.push_back("main got " + show(g.switch_to(10)));
  log.push_back("main got " + show(g.switch_to(20)));
  log.push_back("dead "s + (g.dead() ? "True" : "False"));
  EXPECT_EQ(log, (std::vector<std::string>{"f got 10", "main got 11", "f resumed with 20",
                                           "main got f returned", "dead True"}));
}

// r2: a void() function receives and returns no value (an empty std::any); a value switched into
// it is dropped (C++ only: the greenlet library would raise TypeError for the extra argument).
TEST(RawGreenlet, FunctionWithoutValuesPassesNothing) {
  std::vector<std::string> log;
  RawGreenlet& main = RawGreenlet::main();
  RawGreenlet g([&] {
    log.push_back("f ran");
    log.push_back("f resumed with " + show(main.switch_to()));
  });
  log.push_back("main got " + show(g.switch_to()));
  log.push_back("main got " + show(g.switch_to()));
  EXPECT_EQ(log, (std::vector<std::string>{"f ran", "main got nothing", "f resumed with nothing",
                                           "main got nothing"}));
  RawGreenlet dropped([&] { log.push_back("dropped ran"); });
  EXPECT_FALSE(dropped.switch_to(5).has_value());
  EXPECT_EQ(log.back(), "dropped ran");
}

// r3: switching to the running greenlet (main or not) returns the value without switching.
TEST(RawGreenlet, SwitchToTheRunningGreenletReturnsTheValue) {
  std::vector<std::string> log;
  log.push_back("main got " + show(RawGreenlet::main().switch_to(5)));
  RawGreenlet* g_ptr = nullptr;
  RawGreenlet g([&] { log.push_back("g got " + show(g_ptr->switch_to("to itself"s))); });
  g_ptr = &g;
  g.switch_to();
  EXPECT_EQ(log, (std::vector<std::string>{"main got 5", "g got to itself"}));
}

// r4: an exception thrown into an unstarted greenlet kills it without running fn and propagates
// to the thrower (its parent).
TEST(RawGreenlet, ThrowIntoUnstartedDiesWithoutRunning) {
  std::vector<std::string> log;
  RawGreenlet g([&] { log.push_back("g ran"); });
  try {
    g.throw_in(std::make_exception_ptr(std::invalid_argument("thrown before start")));
    log.push_back("main not thrown to");
  } catch (const std::invalid_argument& e) {
    log.push_back("main caught "s + e.what());
  }
  log.push_back("dead "s + (g.dead() ? "True" : "False"));
  EXPECT_EQ(log, (std::vector<std::string>{"main caught thrown before start", "dead True"}));
}

// r5: GreenletExit thrown into an unstarted greenlet kills it without running fn, and the thrower
// gets that very exception_ptr back as the value; throw_in() with no argument throws GreenletExit.
TEST(RawGreenlet, GreenletExitIntoUnstartedIsReturned) {
  std::vector<std::string> log;
  RawGreenlet g([&] { log.push_back("g ran"); });
  const std::exception_ptr exit = std::make_exception_ptr(tendril::GreenletExit());
  const std::any got = g.throw_in(exit);
  log.push_back("main got the same GreenletExit "s +
                (std::any_cast<std::exception_ptr>(got) == exit ? "True" : "False"));
  log.push_back("dead "s + (g.dead() ? "True" : "False"));
  RawGreenlet g2([&] { log.push_back("g2 ran"); });
  log.push_back("main got a GreenletExit "s + (is_greenlet_exit(g2.throw_in()) ? "True" : "False"));
  log.push_back("dead "s + (g2.dead() ? "True" : "False"));
  EXPECT_EQ(log, (std::vector<std::string>{"main got the same GreenletExit True", "dead True",
                                           "main got a GreenletExit True", "dead True"}));
}

// r6: throw_in() raises at the suspended greenlet's switch point; it may catch it and finish.
TEST(RawGreenlet, ThrowInRaisesAtTheSwitchPoint) {
  std::vector<std::string> log;
  RawGreenlet& main = RawGreenlet::main();
  RawGreenlet g([&](std::any) -> std::any {
    try {
      log.push_back("g before");
      main.switch_to("g paused"s);
      log.push_back("g not thrown to");
    } catch (const std::invalid_argument& e) {
      log.push_back("g caught "s + e.what());
      return "g handled it"s;
    }
    return {};
  });
  log.push_back("main got " + show(g.switch_to()));
  log.push_back("main got " +
                show(g.throw_in(std::make_exception_ptr(std::invalid_argument("boom")))));
  log.push_back("dead "s + (g.dead() ? "True" : "False"));
  EXPECT_EQ(log, (std::vector<std::string>{"g before", "main got g paused", "g caught boom",
                                           "main got g handled it", "dead True"}));
}

// r7: GreenletExit thrown into a suspended greenlet unwinds it (destructors run) and it dies
// normally: the thrower's throw_in() returns that exception_ptr as the value.
TEST(RawGreenlet, GreenletExitIntoSuspendedIsReturned) {
  std::vector<std::string> log;
  RawGreenlet& main = RawGreenlet::main();
  struct Unwinding {
    std::vector<std::string>* log;
    ~Unwinding() { log->push_back("g unwinding"); }
  };
  auto f = [&] {
    Unwinding guard{&log};
    log.push_back("g before");
    main.switch_to();
    log.push_back("g never");
  };
  RawGreenlet g(f);
  g.switch_to();
  const std::exception_ptr exit = std::make_exception_ptr(tendril::GreenletExit());
  const std::any got = g.throw_in(exit);
  log.push_back("main got the same GreenletExit "s +
                (std::any_cast<std::exception_ptr>(got) == exit ? "True" : "False"));
  log.push_back("dead "s + (g.dead() ? "True" : "False"));
  RawGreenlet g2(f);
  g2.switch_to();
  log.push_back("main got a GreenletExit "s + (is_greenlet_exit(g2.throw_in()) ? "True" : "False"));
  EXPECT_EQ(log, (std::vector<std::string>{
                     "g before", "g unwinding", "main got the same GreenletExit True", "dead True",
                     "g before", "g unwinding", "main got a GreenletExit True"}));
}

// r8: an exception thrown in and not caught kills the greenlet and propagates to its parent; one
// thrown into the dead greenlet goes to its parent, here the running main greenlet, at once.
TEST(RawGreenlet, UncaughtThrowInPropagatesToParent) {
  std::vector<std::string> log;
  RawGreenlet& main = RawGreenlet::main();
  RawGreenlet g([&] {
    log.push_back("g before");
    main.switch_to();
    log.push_back("g never");
  });
  g.switch_to();
  auto throw_key = [&](const char* key) {
    try {
      g.throw_in(std::make_exception_ptr(std::out_of_range(key)));
      log.push_back("main not thrown to");
    } catch (const std::out_of_range& e) {
      log.push_back("main caught "s + e.what());
    }
  };
  throw_key("k");
  log.push_back("dead "s + (g.dead() ? "True" : "False"));
  throw_key("k2");  // goes to g's parent: the running main greenlet
  EXPECT_EQ(log,
            (std::vector<std::string>{"g before", "main caught k", "dead True", "main caught k2"}));
}

// r9: parent() is the creator (nullptr for main); set_parent() rejects cycles and main greenlets
// with UsageError, and a running greenlet that sets its parent finishes into the new one.
TEST(RawGreenlet, ParentGetAndSet) {
  std::vector<std::string> log;
  RawGreenlet& main = RawGreenlet::main();
  RawGreenlet a([] {});
  RawGreenlet b([] {});
  log.push_back("a's parent is main "s + (a.parent() == &main ? "True" : "False"));
  log.push_back("main's parent "s + (main.parent() == nullptr ? "None" : "not None"));
  b.set_parent(a);
  log.push_back("b's parent is a "s + (b.parent() == &a ? "True" : "False"));
  for (RawGreenlet* parent : {&b, &a}) {
    try {
      a.set_parent(*parent);
      log.push_back("accepted");
    } catch (const tendril::UsageError& e) {
      log.push_back("rejected: " + usage_reason(e));
    }
  }
  try {
    main.set_parent(a);
    log.push_back("accepted");
  } catch (const tendril::UsageError& e) {
    log.push_back("rejected: " + usage_reason(e));
  }
  log.push_back("a's parent is main "s + (a.parent() == &main ? "True" : "False"));
  RawGreenlet p([&](std::any) -> std::any {
    std::any v = main.switch_to("p paused"s);
    log.push_back("p resumed with " + show(v));
    return "p returned"s;
  });
  log.push_back("main got " + show(p.switch_to()));
  RawGreenlet c([&](std::any) -> std::any {
    RawGreenlet::current()->set_parent(p);  // while running: its end goes to p now
    return "c returned"s;
  });
  log.push_back("main got " + show(c.switch_to()));
  EXPECT_EQ(log,
            (std::vector<std::string>{
                "a's parent is main True", "main's parent None", "b's parent is a True",
                "rejected: cyclic parent chain", "rejected: cyclic parent chain",
                "rejected: cannot set the parent of a main greenlet", "a's parent is main True",
                "main got p paused", "p resumed with c returned", "main got p returned"}));
}

// r10: main() is the thread's own stack as a handle: current() there, never dead, and switching
// to it from a greenlet passes the value to main's pending switch.
TEST(RawGreenlet, MainGreenletHandle) {
  std::vector<std::string> log;
  RawGreenlet& main = RawGreenlet::main();
  log.push_back("main dead "s + (main.dead() ? "True" : "False"));
  RawGreenlet* g_ptr = nullptr;
  RawGreenlet g([&](std::any) -> std::any {
    log.push_back("g is current "s + (RawGreenlet::current() == g_ptr ? "True" : "False"));
    log.push_back("g resumed with " + show(main.switch_to("from g"s)));
    return "g returned"s;
  });
  g_ptr = &g;
  log.push_back("main got " + show(g.switch_to()));
  log.push_back("main is current "s + (RawGreenlet::current() == &main ? "True" : "False"));
  log.push_back("main got " + show(g.switch_to("from main"s)));
  log.push_back("main dead "s + (main.dead() ? "True" : "False"));
  EXPECT_EQ(log,
            (std::vector<std::string>{"main dead False", "g is current True", "main got from g",
                                      "main is current True", "g resumed with from main",
                                      "main got g returned", "main dead False"}));
}

// r11: a switch to a finished greenlet goes to its parent with the value, or on up to the first
// ancestor alive (the main greenlet at the end).
TEST(RawGreenlet, SwitchToFinishedGoesToParent) {
  std::vector<std::string> log;
  RawGreenlet& main = RawGreenlet::main();
  RawGreenlet p([&](std::any) -> std::any {
    log.push_back("p resumed with " + show(main.switch_to("p paused"s)));
    log.push_back("p resumed with " + show(main.switch_to("p paused again"s)));
    return "p returned"s;
  });
  log.push_back("main got " + show(p.switch_to()));
  RawGreenlet c([](std::any) -> std::any { return "c returned"s; });
  c.set_parent(p);
  log.push_back("main got " + show(c.switch_to()));
  log.push_back("main got " + show(c.switch_to("to dead c"s)));
  log.push_back("p dead "s + (p.dead() ? "True" : "False"));
  log.push_back("main got " + show(c.switch_to("to dead c, dead p"s)));
  EXPECT_EQ(log, (std::vector<std::string>{"main got p paused", "p resumed with c returned",
                                           "main got p paused again", "p resumed with to dead c",
                                           "main got p returned", "p dead True",
                                           "main got to dead c, dead p"}));
}

// r12: a greenlet finishing into an unstarted parent starts it with its return value.
TEST(RawGreenlet, FinishIntoUnstartedParentStartsIt) {
  std::vector<std::string> log;
  RawGreenlet a([&](std::any x) -> std::any {
    log.push_back("a got " + show(x));
    return "a returned"s;
  });
  RawGreenlet b([](std::any) -> std::any { return "b returned"s; });
  b.set_parent(a);
  log.push_back("main got " + show(b.switch_to()));
  log.push_back("a dead "s + (a.dead() ? "True" : "False") + " b dead " +
                (b.dead() ? "True" : "False"));
  EXPECT_EQ(log, (std::vector<std::string>{"a got b returned", "main got a returned",
                                           "a dead True b dead True"}));
}

// r13: an exception thrown into a finished greenlet is raised in its parent instead.
TEST(RawGreenlet, ThrowIntoFinishedGoesToParent) {
  std::vector<std::string> log;
  RawGreenlet& main = RawGreenlet::main();
  RawGreenlet p([&](std::any) -> std::any {
    try {
      main.switch_to("p paused"s);
    } catch (const std::out_of_range& e) {
      log.push_back("p caught "s + e.what());
      return "p returned"s;
    }
    return {};
  });
  log.push_back("main got " + show(p.switch_to()));
  RawGreenlet c([](std::any) -> std::any { return "c returned"s; });
  log.push_back("main got " + show(c.switch_to()));
  c.set_parent(p);
  log.push_back("main got " +
                show(c.throw_in(std::make_exception_ptr(std::out_of_range("into dead c")))));
  EXPECT_EQ(log, (std::vector<std::string>{"main got p paused", "main got c returned",
                                           "p caught into dead c", "main got p returned"}));
}

// r14: an exception escaping a greenlet is raised at its parent's switch point, not the
// switcher's.
TEST(RawGreenlet, EscapingExceptionGoesToParent) {
  std::vector<std::string> log;
  RawGreenlet& main = RawGreenlet::main();
  RawGreenlet p([&](std::any) -> std::any {
    try {
      main.switch_to("p paused"s);
    } catch (const std::invalid_argument& e) {
      log.push_back("p caught "s + e.what());
      return "p returned"s;
    }
    return {};
  });
  log.push_back("main got " + show(p.switch_to()));
  RawGreenlet c([&] {
    log.push_back("c raising");
    throw std::invalid_argument("escaped c");
  });
  c.set_parent(p);
  log.push_back("main got " + show(c.switch_to()));
  EXPECT_EQ(log, (std::vector<std::string>{"main got p paused", "c raising", "p caught escaped c",
                                           "main got p returned"}));
}

// r15: destroying an unfinished greenlet throws GreenletExit into it and comes back to the
// destroyer, not to its parent.
TEST(RawGreenlet, DestroyingReturnsToTheDestroyer) {
  std::vector<std::string> log;
  RawGreenlet& main = RawGreenlet::main();
  RawGreenlet p([&](std::any) -> std::any {
    main.switch_to("p paused"s);
    log.push_back("p never");
    return {};
  });
  log.push_back("main got " + show(p.switch_to()));
  {
    RawGreenlet g([&](std::any) -> std::any {
      try {
        log.push_back("g before");
        main.switch_to("g paused"s);
      } catch (const tendril::GreenletExit&) {
        log.push_back("g got GreenletExit");
        throw;
      }
      return {};
    });
    g.set_parent(p);
    log.push_back("main got " + show(g.switch_to()));
  }
  log.push_back("main after destroying g, p dead "s + (p.dead() ? "True" : "False"));
  EXPECT_EQ(log, (std::vector<std::string>{"main got p paused", "g before", "main got g paused",
                                           "g got GreenletExit",
                                           "main after destroying g, p dead False"}));
}
