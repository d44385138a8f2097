// SPDX-License-Identifier: Apache-2.0
// API misuse gets a clear UsageError (or a documented no-op), never a crash or a hang.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tendril/sim.hpp"

using namespace std::chrono_literals;
using tendril::SimHub;
using tendril::UsageError;

namespace {
// Expects f() to throw UsageError whose message contains `needle`.
template <class F>
void expect_usage_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no UsageError; expected one mentioning: " << needle;
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}
}  // namespace

// Spawning, sleeping and asking the time with no running hub name the call and the fix.
TEST(Misuse, NoRunningHub) {
  expect_usage_error([] { tendril::spawn([] {}); }, "no hub is running on this thread");
  expect_usage_error([] { tendril::sleep(0s); }, "tendril::sleep: no hub is running");
  expect_usage_error([] { tendril::now(); }, "tendril::now: no hub is running");
}

// join/get of an unfinished greenlet from outside any hub is an error, not a hang.
TEST(Misuse, JoinFromOutsideAnyHub) {
  SimHub hub;
  tendril::Ref<tendril::Task<int>> g;
  tendril::run(hub, [&] {
    g = tendril::spawn([] { return 3; });
    g->join();
  });
  EXPECT_EQ(g->get(), 3);  // a finished one is fine
  tendril::Ref<tendril::Task<void>> pending;
  tendril::run(hub, [&] {
    pending = tendril::make_greenlet<tendril::detail::FnTask<void, std::function<void()>>>(
        "pending", std::function<void()>([] {}));
  });
  expect_usage_error([&] { pending->join(); }, "Greenlet::join: no hub is running");
  expect_usage_error([&] { pending->get(); }, "Task::get: no hub is running");
}

// A negative sleep names the call and the value.
TEST(Misuse, NegativeSleep) {
  SimHub hub;
  tendril::run(hub, [] {
    expect_usage_error([] { tendril::sleep(-5ns); }, "tendril::sleep: negative duration (-5 ns)");
    expect_usage_error([] { tendril::spawn_later(-1s, [] {}); }, "start_later: negative duration");
    // Durations too large for nanoseconds saturate instead of overflowing (UBSan would say):
    // a huge negative one is refused, a huge positive one sleeps until the end of time.
    expect_usage_error([] { tendril::sleep(std::chrono::hours(-3'000'000)); },
                       "tendril::sleep: negative duration (-10800000000000000000 ns)");
    expect_usage_error([] { tendril::sleep(std::chrono::hours::min()); },
                       "tendril::sleep: negative duration (");
  });
  SimHub late;
  tendril::run(late, [] { tendril::sleep(std::chrono::hours(3'000'000)); });
  EXPECT_EQ(late.now_ns(), INT64_MAX);
}

// Joining yourself is refused instead of waiting forever.
TEST(Misuse, JoinSelf) {
  SimHub hub;
  tendril::run(hub, [] {
    auto g = tendril::spawn(
        [] { expect_usage_error([] { tendril::getcurrent()->join(); }, "cannot join itself"); });
    g->get();
  });
}

// Blocking inside a rawlink callback (the hub's own stack) is refused, sleep(0) (its own short
// path) as any other sleep.
TEST(Misuse, BlockingInLinkCallback) {
  SimHub hub;
  std::vector<std::string> messages;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([] {});
    g->rawlink([&](tendril::Greenlet&) {
      for (const auto d : {1s, 0s}) {
        try {
          tendril::sleep(d);
        } catch (const UsageError& e) {
          messages.emplace_back(e.what());
        }
      }
    });
    g->join();
    tendril::sleep(0s);
  });
  const std::string refused =
      "tendril::sleep: called on the hub's own stack (from a link or callback), which must not "
      "block; call it from a greenlet";
  EXPECT_EQ(messages, (std::vector<std::string>{refused, refused}));
}

// run() does not nest.
TEST(Misuse, NestedRun) {
  SimHub hub;
  SimHub other;
  tendril::run(hub, [&] {
    expect_usage_error([&] { tendril::run(other, [] {}); }, "already running on this thread");
  });
}

// A greenlet object not made by make_greenlet/spawn cannot be started.
TEST(Misuse, StackAllocatedGreenletCannotStart) {
  SimHub hub;
  tendril::run(hub, [] {
    struct G : tendril::Greenlet {
      void run() override {}
    };
    G g;
    expect_usage_error([&] { g.start(); }, "must live on the heap");
  });
}

// A Greenlet with no body fails with a UsageError naming it (not a crash).
TEST(Misuse, GreenletWithoutBodyFails) {
  SimHub hub;
  hub.set_error_handler([](tendril::Greenlet&, std::exception_ptr) {});
  tendril::run(hub, [] {
    auto g = tendril::make_greenlet<tendril::Greenlet>("empty");
    g->start();
    g->join();
    ASSERT_FALSE(g->successful());
    EXPECT_NE(tendril::describe_exception(g->exception()).find("has no body"), std::string::npos);
  });
}

// A destructor that throws while GreenletExit unwinds a greenlet ends the process (C++ calls
// std::terminate), and the last line names the greenlet and the exception.
TEST(MisuseDeathTest, TerminateInAGreenletNamesIt) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  struct Bad {
    ~Bad() noexcept(false) { throw std::runtime_error("thrown by a destructor"); }
  };
  EXPECT_DEATH(
      {
        SimHub hub;
        tendril::run(hub, [] {
          auto g = tendril::spawn("unwinder", [] {
            Bad bad;
            tendril::sleep(1s);
          });
          tendril::sleep(0s);
          g->kill();
        });
      },
      "tendril: std::terminate called in greenlet #2 'unwinder'");
}

// A greenlet whose hub was destroyed cannot be started or killed: a clear UsageError, never a
// use of the dead hub (ASan would say stack-use-after-scope). A new hub built at the same address
// is told apart by its serial.
TEST(Misuse, GreenletOfDestroyedHub) {
  using G = tendril::detail::FnTask<void, std::function<void()>>;
  std::optional<SimHub> hub;
  hub.emplace();
  tendril::Ref<tendril::Task<void>> orphan;
  tendril::run(*hub,
               [&] { orphan = tendril::make_greenlet<G>("orphan", std::function<void()>([] {})); });
  const void* first_address = &*hub;
  hub.reset();
  const std::string dead =
      " #2 'orphan' belongs to a hub that was destroyed; a greenlet runs only on the hub it was "
      "created on";
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no UsageError");
  };
  EXPECT_EQ(message([&] { orphan->start(); }), "tendril::Greenlet::start:" + dead);
  EXPECT_EQ(message([&] { orphan->start_later(1s); }), "tendril::Greenlet::start_later:" + dead);
  EXPECT_EQ(message([&] { orphan->kill(); }), "tendril::Greenlet::kill:" + dead);
  hub.emplace();
  ASSERT_EQ(static_cast<const void*>(&*hub), first_address);
  std::string inside;
  tendril::run(*hub, [&] { inside = message([&] { orphan->start(); }); });
  EXPECT_EQ(inside, "tendril::Greenlet::start:" + dead);
  EXPECT_EQ(hub->live_greenlets(), 0u);
  EXPECT_EQ(orphan->state(), tendril::Greenlet::State::created);
}

// A greenlet created in one run() of a hub can be started between runs and runs in the next.
TEST(Misuse, GreenletStartedBetweenRunsOfItsHub) {
  using G = tendril::detail::FnTask<void, std::function<void()>>;
  SimHub hub;
  int ran = 0;
  tendril::Ref<tendril::Task<void>> later;
  tendril::run(hub, [&] {
    later = tendril::make_greenlet<G>("later", std::function<void()>([&] { ++ran; }));
  });
  later->start();
  EXPECT_EQ(ran, 0);
  tendril::run(hub, [] {});
  EXPECT_EQ(ran, 1);
  EXPECT_TRUE(later->successful());
}
