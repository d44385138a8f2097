// SPDX-License-Identifier: Apache-2.0
// tracer_test.cpp: the observer hook and the in-memory Tracer on the simulated hub: the exact
// event sequence of the seed's foo/bar program, queue and timer reasons, kills and exits.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

using namespace std::chrono_literals;
using tendril::trace::EventKind;
using tendril::trace::Trace;
using tendril::trace::TraceEvent;

namespace {

// One line per event: "<kind> <greenlet> <other> <reason> [<object>:<name>] @<time>".
std::string line(const TraceEvent& e) {
  std::string out;
  switch (e.kind) {
    case EventKind::spawn:
      out = "spawn";
      break;
    case EventKind::switch_:
      out = "switch";
      break;
    case EventKind::block:
      out = "block";
      break;
    case EventKind::wake:
      out = "wake";
      break;
    case EventKind::timer:
      out = "timer";
      break;
    case EventKind::io:
      out = "io";
      break;
    case EventKind::choice:
      out = "choice";
      break;
    case EventKind::exit:
      out = "exit";
      break;
    case EventKind::kill:
      out = "kill";
      break;
    case EventKind::fault:
      out = "fault";
      break;
  }
  out += " " + std::to_string(e.greenlet) + " " + std::to_string(e.other);
  if (!e.reason.empty()) out += " " + e.reason;
  if (e.kind == EventKind::spawn) out += " '" + e.name + "'";
  if (e.object != 0 || (!e.name.empty() && e.kind != EventKind::spawn)) {
    out += " [" + std::to_string(e.object) + ":" + e.name + "]";
  }
  if (e.kind == EventKind::choice) {
    out += " " + std::to_string(e.answer) + "/" + std::to_string(e.n);
  }
  if (e.time_ns != 0) out += " @" + std::to_string(e.time_ns);
  return out;
}

std::vector<std::string> lines(const Trace& t) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < t.events.size(); ++i) {
    EXPECT_EQ(t.events[i].seq, i);
    out.push_back(line(t.events[i]));
  }
  return out;
}

Trace foo_bar_trace() {
  tendril::SimHub hub;
  tendril::trace::Tracer tracer(hub, "foo_bar");
  tendril::run(hub, [] {
    auto foo = tendril::spawn("foo", [] { tendril::sleep(0s); });
    auto bar = tendril::spawn("bar", [] { tendril::sleep(0s); });
    tendril::joinall({foo, bar});
  });
  return tracer.trace();
}

TEST(Tracer, FooBarRecordsEverySwitchThroughTheHubInGeventsOrder) {
  const Trace t = foo_bar_trace();
  EXPECT_EQ(t.hub, "SimHub");
  EXPECT_EQ(t.test, "foo_bar");
  // Greenlet 1 is main, 0 the hub. foo and bar hand control to each other through the hub.
  const std::vector<std::string> want = {
      "spawn 1 0 'main'",
      "switch 0 1 start",
      "spawn 2 1 'foo'",
      "spawn 3 1 'bar'",
      "block 1 0 join [0:#2 'foo']",
      "switch 1 0 join",
      "switch 0 2 start",
      "block 2 0 sleep(0)",
      "switch 2 0 sleep(0)",
      "switch 0 3 start",
      "block 3 0 sleep(0)",
      "switch 3 0 sleep(0)",
      "wake 2 0 sleep(0)",
      "switch 0 2 resume",
      "exit 2 0 value",
      "switch 2 0 exit",
      "wake 3 0 sleep(0)",
      "switch 0 3 resume",
      "exit 3 0 value",
      "switch 3 0 exit",
      "wake 1 0 join [0:#2 'foo']",
      "switch 0 1 resume",
      "exit 1 0 value",
      "switch 1 0 exit",
  };
  EXPECT_EQ(lines(t), want);
}

TEST(Tracer, SameProgramGivesTheSameTraceRunAfterRun) {
  EXPECT_EQ(foo_bar_trace(), foo_bar_trace());
}

TEST(Tracer, QueueTimerKillAndErrorEventsCarryTheirReasonsObjectsAndTimes) {
  tendril::SimHub hub;
  tendril::trace::Tracer tracer(hub);
  tendril::run(hub, [] {
    tendril::Queue<int> q;
    auto consumer = tendril::spawn("consumer", [&] { (void)q.get(); });
    auto sleeper = tendril::spawn("sleeper", [] { tendril::sleep(5ms); });
    auto failer = tendril::spawn("failer", [] { throw std::runtime_error("boom"); });
    tendril::sleep(0s);
    q.put(7);
    sleeper->kill();
    tendril::joinall({consumer, sleeper, failer});
  });
  const std::vector<std::string> got = lines(tracer.trace());
  const std::vector<std::string> want = {
      "spawn 1 0 'main'",
      "switch 0 1 start",
      "spawn 2 1 'consumer'",
      "spawn 3 1 'sleeper'",
      "spawn 4 1 'failer'",
      "block 1 0 sleep(0)",
      "switch 1 0 sleep(0)",
      "switch 0 2 start",
      "block 2 0 Queue.get [1:Queue#1]",
      "switch 2 0 Queue.get",
      "switch 0 3 start",
      "block 3 0 sleep",
      "switch 3 0 sleep",
      "switch 0 4 start",
      "exit 4 0 std::runtime_error: boom",
      "switch 4 0 exit",
      "wake 1 0 sleep(0)",
      "switch 0 1 resume",
      "kill 3 1",
      "block 1 0 kill [0:#3 'sleeper']",
      "switch 1 0 kill",
      "wake 2 0 Queue.get [1:Queue#1]",
      "switch 0 2 resume",
      "exit 2 0 value",
      "switch 2 0 exit",
      "switch 0 3 kill",
      "exit 3 0 GreenletExit",
      "switch 3 0 exit",
      "wake 1 0 kill [0:#3 'sleeper']",
      "switch 0 1 resume",
      "exit 1 0 value",
      "switch 1 0 exit",
  };
  EXPECT_EQ(got, want);
}

TEST(Tracer, TimersAndChoicesAreRecordedWithVirtualTime) {
  tendril::SimHub hub(std::make_unique<tendril::Random>(3));
  tendril::trace::Tracer tracer(hub);
  tendril::run(hub, [] {
    tendril::sleep(2ms);
    (void)tendril::random_below(4);
  });
  const std::vector<std::string> got = lines(tracer.trace());
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got[2], "block 1 0 sleep");
  EXPECT_EQ(got[4], "timer 1 0 sleep @2000000");
  EXPECT_EQ(got[5], "wake 1 0 sleep @2000000");  // a sleep's timer is its normal end
  EXPECT_EQ(got[6], "switch 0 1 resume @2000000");
  EXPECT_EQ(got[7].rfind("choice 0 0 random ", 0), 0u) << got[7];
  EXPECT_NE(got[7].find("/4 @2000000"), std::string::npos) << got[7];
}

TEST(Tracer, ATimeoutIsATimeoutAndTheTimedOutWaitSaysSo) {
  tendril::SimHub hub;
  tendril::trace::Tracer tracer(hub);
  tendril::run(hub, [] {
    tendril::Event event;
    EXPECT_FALSE(event.wait(3ms));
  });
  const std::vector<std::string> got = lines(tracer.trace());
  const std::vector<std::string> want = {
      "spawn 1 0 'main'",
      "switch 0 1 start",
      "block 1 0 Event.wait [1:Event#1]",
      "switch 1 0 Event.wait",
      "timer 1 0 timeout @3000000",
      "wake 1 0 timeout [1:Event#1] @3000000",
      "switch 0 1 timeout @3000000",
      "exit 1 0 value @3000000",
      "switch 1 0 exit @3000000",
  };
  EXPECT_EQ(got, want);
}

TEST(Tracer, RefusesASecondObserverAndUninstallsItself) {
  tendril::SimHub hub;
  {
    tendril::trace::Tracer first(hub);
    EXPECT_EQ(hub.observer(), &first);
    EXPECT_THROW(tendril::trace::Tracer second(hub), tendril::UsageError);
  }
  EXPECT_EQ(hub.observer(), nullptr);
}

}  // namespace
