// SPDX-License-Identifier: Apache-2.0
// exception_state_test.cpp: each greenlet has its own C++ exception state, as each thread does:
// the exception a catch block handles (`throw;`, std::current_exception()) and
// std::uncaught_exceptions() stay the greenlet's own across every switch, on both hubs' shared
// switch path and on raw greenlets.
#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "tendril/sched/raw.hpp"
#include "tendril/sim.hpp"

using namespace std::chrono_literals;
using tendril::SimHub;

namespace {

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "?";
  }
}

}  // namespace

// Two greenlets each block inside a catch block, then rethrow: each rethrows its own exception
// (without the save and restore, B's error was A's).
TEST(ExceptionState, RethrowAfterBlockingInCatch) {
  SimHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    auto body = [&](const std::string& name) {
      try {
        try {
          throw std::runtime_error(name + "'s error");
        } catch (...) {
          tendril::sleep(0s);  // the other greenlet runs, throws and catches its own
          log.push_back(name + " sees " + what_of(std::current_exception()));
          tendril::sleep(1ms);
          throw;
        }
      } catch (const std::runtime_error& e) {
        log.push_back(name + " rethrew " + e.what());
      }
    };
    auto a = tendril::spawn("a", body, std::string("a"));
    auto b = tendril::spawn("b", body, std::string("b"));
    tendril::joinall({a, b});
  });
  EXPECT_EQ(log, (std::vector<std::string>{"a sees a's error", "b sees b's error",
                                           "a rethrew a's error", "b rethrew b's error"}));
}

// Nested handlers: a greenlet blocks in an inner catch inside an outer one; after the inner
// ends, current_exception() is the outer one again. Main, blocked meanwhile in its own catch,
// keeps its own.
TEST(ExceptionState, NestedHandlersStayNested) {
  SimHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    auto nested = tendril::spawn("nested", [&] {
      try {
        throw std::runtime_error("outer");
      } catch (...) {
        try {
          throw std::logic_error("inner");
        } catch (...) {
          tendril::sleep(1ms);
          log.push_back("inner handler: " + what_of(std::current_exception()));
        }
        tendril::sleep(1ms);
        log.push_back("outer handler: " + what_of(std::current_exception()));
      }
      log.push_back(std::current_exception() ? "after: still handling" : "after: none");
    });
    try {
      throw std::out_of_range("main's");
    } catch (...) {
      nested->join();
      log.push_back("main: " + what_of(std::current_exception()));
    }
    log.push_back(std::current_exception() ? "main after: still handling" : "main after: none");
  });
  EXPECT_EQ(log, (std::vector<std::string>{"inner handler: inner", "outer handler: outer",
                                           "after: none", "main: main's", "main after: none"}));
}

// std::uncaught_exceptions() in destructors run by GreenletExit unwinding is 1 in the dying
// greenlet, even when the destructor blocks, and 0 in the others meanwhile.
TEST(ExceptionState, UncaughtExceptionsInDestructorsDuringAKill) {
  SimHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    struct Cleanup {
      std::vector<std::string>* log;
      ~Cleanup() {
        log->push_back("cleanup before blocking: " + std::to_string(std::uncaught_exceptions()));
        tendril::sleep(1ms);  // blocking while GreenletExit unwinds this greenlet
        log->push_back("cleanup after blocking: " + std::to_string(std::uncaught_exceptions()));
      }
    };
    auto victim = tendril::spawn("victim", [&] {
      Cleanup c{&log};
      tendril::sleep(1h);
    });
    auto observer = tendril::spawn("observer", [&] {
      tendril::sleep(500us);  // while the victim's destructor sleeps
      log.push_back("observer: " + std::to_string(std::uncaught_exceptions()));
    });
    tendril::sleep(0s);
    victim->kill(nullptr, false);
    log.push_back("main: " + std::to_string(std::uncaught_exceptions()));
    tendril::joinall({victim, observer});
  });
  EXPECT_EQ(log, (std::vector<std::string>{"main: 0", "cleanup before blocking: 1", "observer: 0",
                                           "cleanup after blocking: 1"}));
}

// Raw greenlets switch symmetrically, with the same guarantee.
TEST(ExceptionState, RawGreenletsKeepTheirOwn) {
  std::vector<std::string> log;
  tendril::RawGreenlet* other_ptr = nullptr;
  tendril::RawGreenlet first([&] {
    try {
      throw std::runtime_error("first's");
    } catch (...) {
      other_ptr->switch_to();
      log.push_back("first: " + what_of(std::current_exception()));
    }
  });
  tendril::RawGreenlet other([&] {
    try {
      throw std::runtime_error("other's");
    } catch (...) {
      first.switch_to();  // first finishes and returns to its parent, the thread
    }
  });
  other_ptr = &other;
  try {
    throw std::runtime_error("thread's");
  } catch (...) {
    first.switch_to();
    log.push_back("thread: " + what_of(std::current_exception()));
  }
  EXPECT_EQ(log, (std::vector<std::string>{"first: first's", "thread: thread's"}));
}
