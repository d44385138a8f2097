// SPDX-License-Identifier: Apache-2.0
// SimHub: virtual time, policies, deadlock reports, step limit, timer ordering and cancellation.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "seeds.hpp"
#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

using namespace std::chrono_literals;
using tendril::Ref;
using tendril::SimHub;
using Log = std::vector<std::string>;

namespace {

// Runs n greenlets that each log their id after a random number of sleep(0)s, under `hub`.
Log interleaving(SimHub& hub, int n) {
  Log log;
  tendril::run(hub, [&] {
    std::vector<Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < n; ++i) {
      gs.push_back(tendril::spawn([&log, i] {
        for (int k = 0; k < 3; ++k) {
          log.push_back(std::to_string(i) + "." + std::to_string(k));
          tendril::sleep(0s);
        }
      }));
    }
    tendril::joinall(gs);
  });
  return log;
}

}  // namespace

// Fifo is gevent's round-robin order.
TEST(SimHub, FifoIsRoundRobin) {
  SimHub hub;
  EXPECT_EQ(interleaving(hub, 2), (Log{"0.0", "1.0", "0.1", "1.1", "0.2", "1.2"}));
  EXPECT_EQ(hub.choices(), 0u);  // Fifo is answered inline
}

// Random(seed) is reproducible: the same seed gives the same interleaving; seeds differ.
TEST(SimHub, RandomPolicyIsSeeded) {
  SimHub a{tendril::Random{7}};
  SimHub b{tendril::Random{7}};
  const Log la = interleaving(a, 4);
  EXPECT_EQ(la, interleaving(b, 4));
  EXPECT_GT(a.choices(), 0u);
  bool some_seed_differs = false;
  for (std::uint64_t seed = 1; seed < 6; ++seed) {
    SimHub c{tendril::Random{seed}};
    some_seed_differs = some_seed_differs || interleaving(c, 4) != la;
  }
  EXPECT_TRUE(some_seed_differs);
}

// Random's answers are pinned: a change of generator would silently change every recorded seed.
TEST(SimHub, RandomAnswersArePinned) {
  tendril::Random r(42);
  std::vector<std::uint32_t> got;
  for (int i = 0; i < 8; ++i) got.push_back(r.below(10));
  tendril::Random again(42);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(again.below(10), got[static_cast<std::size_t>(i)]);
  EXPECT_EQ(got, (std::vector<std::uint32_t>{7, 1, 2, 3, 0, 8, 2, 8}));
  EXPECT_EQ(r.describe(), "random(seed=42)");
}

// A custom Chooser picks which of the timers due at the same instant fires first.
TEST(SimHub, ChooserPicksAmongEqualDeadlineTimers) {
  struct Last : tendril::Chooser {
    std::vector<std::uint32_t> asked;
    std::uint32_t choose(const tendril::ChoicePoint& p) override {
      asked.push_back(p.n);
      return p.n - 1;
    }
  };
  auto chooser = std::make_unique<Last>();
  Last* last = chooser.get();
  SimHub hub(std::move(chooser));
  Log log;
  tendril::run(hub, [&] {
    std::vector<Ref<tendril::Greenlet>> gs;
    for (auto name : {"a", "b", "c"}) {
      gs.push_back(tendril::spawn_later(1s, [&log, name] { log.push_back(name); }));
    }
    tendril::joinall(gs);
  });
  EXPECT_EQ(log, (Log{"c", "b", "a"}));
  // 3 equal timers: choices of 3 then 2; the rest of the asks come from the ready queue.
  ASSERT_GE(last->asked.size(), 2u);
}

// Deadlock: main blocks and nothing can wake it; the report names every blocked greenlet and what
// it waits on, and main's destructors run.
TEST(SimHub, DeadlockNamesEveryBlockedGreenlet) {
  SimHub hub;
  std::string report;
  try {
    tendril::run(hub, [] {
      tendril::Ref<tendril::Greenlet> self(tendril::getcurrent());
      auto b = tendril::spawn("joiner", [self] { self->join(); });
      tendril::sleep(1s);
      b->join();
    });
    ADD_FAILURE() << "no Deadlock";
  } catch (const tendril::Deadlock& e) {
    report = e.what();
  }
  EXPECT_EQ(report,
            "tendril: deadlock at virtual time 1.000000000 s, step 3, choice 0, policy fifo: "
            "nothing is ready, no timer is pending, and 2 greenlets are blocked:\n"
            "  #1 'main' blocked in join on #2 'joiner'\n"
            "  #2 'joiner' blocked in join on #1 'main'\n"
            "  wait-for cycle: #1 'main' joins #2 'joiner'; #2 'joiner' joins #1 'main'");
  EXPECT_EQ(hub.live_greenlets(), 0u);
}

// A lock-order deadlock: the report names each Lock wait as such, who holds each lock, and the
// wait-for cycle through them.
TEST(SimHub, DeadlockNamesHoldersAndTheCycle) {
  SimHub hub;
  std::string report;
  try {
    tendril::run(hub, [] {
      tendril::Lock l1("l1"), l2("l2");
      tendril::Event never("never");
      auto a = tendril::spawn("a", [&] {
        std::lock_guard<tendril::Lock> g1(l1);
        tendril::sleep(0s);
        std::lock_guard<tendril::Lock> g2(l2);
      });
      auto b = tendril::spawn("b", [&] {
        std::lock_guard<tendril::Lock> g2(l2);
        tendril::sleep(0s);
        std::lock_guard<tendril::Lock> g1(l1);
      });
      auto bystander = tendril::spawn("bystander", [&] { never.wait(); });
      tendril::joinall({a, b, bystander});
    });
    ADD_FAILURE() << "no Deadlock";
  } catch (const tendril::Deadlock& e) {
    report = e.what();
  }
  EXPECT_EQ(report,
            "tendril: deadlock at virtual time 0.000000000 s, step 6, choice 0, policy fifo: "
            "nothing is ready, no timer is pending, and 4 greenlets are blocked:\n"
            "  #1 'main' blocked in join on #2 'a'\n"
            "  #2 'a' blocked in Lock.acquire on Lock#2 'l2', held by #3 'b'\n"
            "  #3 'b' blocked in Lock.acquire on Lock#1 'l1', held by #2 'a'\n"
            "  #4 'bystander' blocked in Event.wait on Event#3 'never'\n"
            "  wait-for cycle: #2 'a' waits for Lock#2 'l2', held by #3 'b'; #3 'b' waits for "
            "Lock#1 'l1', held by #2 'a'");
}

// A pending timer keeps the loop alive: no deadlock while someone will wake up.
TEST(SimHub, PendingTimerIsNotDeadlock) {
  SimHub hub;
  tendril::run(hub, [] {
    auto g = tendril::spawn([] { tendril::sleep(5s); });
    g->join();
  });
  EXPECT_EQ(hub.now_ns(), 5'000'000'000);
}

// A greenlet spinning on sleep(0) forever hits the step limit: HubError, not a hang.
TEST(SimHub, StepLimitStopsSpinningRun) {
  tendril::SimOptions options;
  options.max_steps = 10000;
  SimHub hub(options);
  try {
    tendril::run(hub, [] {
      auto spinner = tendril::spawn("spinner", [] {
        for (;;) tendril::sleep(0s);
      });
      spinner->join();
    });
    ADD_FAILURE() << "no HubError";
  } catch (const tendril::HubError& e) {
    EXPECT_NE(std::string(e.what()).find("step limit of 10000 reached"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(hub.live_greenlets(), 0u);
}

// Two greenlets that spin on sleep(0), each waiting for the other, are a Livelock with the default
// options, after exactly livelock_steps yields, naming both; a yield loop that sleeps on time now
// and then (a legitimate poller) is not, however long it runs.
TEST(SimHub, LivelockOfTwoSpinnersIsReportedWithDefaults) {
  SimHub hub;
  std::string what;
  try {
    tendril::run(hub, seeds::two_spinners);
  } catch (const tendril::Livelock& e) {
    what = e.what();
  }
  EXPECT_EQ(what,
            "tendril::SimHub: livelock at virtual time 0.000000000 s, step 100004, choice 0, "
            "policy fifo: for 100000 steps greenlets only yielded with sleep(0) while virtual "
            "time stood still and nothing else happened; spinning: #2 'a', #3 'b' "
            "(SimOptions::livelock_steps raises the bound if the program simply yields that "
            "long; 0 turns the check off)");
  EXPECT_EQ(hub.live_greenlets(), 0u);

  // 300,000 yields, with a 1 ms sleep every 50,000: progress each time, so no Livelock.
  SimHub poller;
  std::uint64_t yields = 0;
  tendril::run(poller, [&] {
    for (; yields < 300'000; ++yields) {
      if (yields % 50'000 == 0) tendril::sleep(1ms);
      tendril::sleep(0s);
    }
  });
  EXPECT_EQ(yields, 300'000u);

  // With the check off (livelock_steps = 0), only the step limit stops a spin.
  tendril::SimOptions off;
  off.livelock_steps = 0;
  off.max_steps = 200'000;
  SimHub unchecked(off);
  EXPECT_THROW(
      {
        try {
          tendril::run(unchecked, [] {
            for (;;) tendril::sleep(0s);
          });
        } catch (const tendril::Livelock&) {
          ADD_FAILURE() << "Livelock with the check off";
        }
      },
      tendril::HubError);
}

// Killing what is left when main returns is not part of the schedule: with a random policy and
// five leftovers that yield while they clean up, teardown makes no choice (nothing is recorded
// after main ends) and runs them FIFO: in creation order, each step of each.
TEST(SimHub, TeardownIsFifoAndOutsideTheSchedule) {
  auto recorder = std::make_unique<tendril::RecordingChooser>(std::make_unique<tendril::Random>(5));
  tendril::RecordingChooser* rec = recorder.get();
  SimHub hub(std::move(recorder));
  std::vector<std::string> log;
  std::size_t recorded_at_main_end = 0;
  std::uint64_t choices_at_main_end = 0;
  tendril::Event never;
  tendril::run(hub, [&] {
    for (int i = 0; i < 5; ++i) {
      tendril::spawn([&log, &never, i] {
        try {
          never.wait();
        } catch (const tendril::GreenletExit&) {
          log.push_back("w" + std::to_string(i) + " cleans");
          tendril::sleep(0s);
          log.push_back("w" + std::to_string(i) + " done");
          throw;
        }
      });
    }
    tendril::sleep(0s);
    tendril::sleep(0s);
    choices_at_main_end = hub.choices();
    recorded_at_main_end = rec->records().size();
  });
  EXPECT_GT(choices_at_main_end, 0u);  // the run itself was explored
  EXPECT_EQ(hub.choices(), choices_at_main_end);
  EXPECT_EQ(rec->records().size(), recorded_at_main_end);
  EXPECT_EQ(log, (std::vector<std::string>{"w0 cleans", "w1 cleans", "w2 cleans", "w3 cleans",
                                           "w4 cleans", "w0 done", "w1 done", "w2 done", "w3 done",
                                           "w4 done"}));
}

// Cancelled timers do not fire and do not keep the loop alive.
TEST(SimHub, CancelledTimerDoesNotFire) {
  SimHub hub;
  int fired = 0;
  tendril::run(hub, [&] {
    auto id = hub.start_timer(hub.now_ns() + 1'000'000'000,
                              tendril::Callback::from_function([&] { ++fired; }));
    EXPECT_EQ(hub.pending_timers(), 1u);
    hub.cancel_timer(id);
    hub.cancel_timer(id);  // twice is a no-op
    EXPECT_EQ(hub.pending_timers(), 0u);
  });
  EXPECT_EQ(fired, 0);
  EXPECT_EQ(hub.now_ns(), 0);
}

// Timeouts armed and cancelled without time passing do not grow the timer heap without bound.
TEST(SimHub, ManyCancelledTimeoutsStayBounded) {
  SimHub hub;
  tendril::run(hub, [&] {
    auto g = tendril::spawn([] { tendril::sleep(1s); });
    tendril::sleep(0s);  // g starts and arms its sleep
    for (int i = 0; i < 100000; ++i) {
      auto id = hub.start_timer(hub.now_ns() + 3'600'000'000'000,
                                tendril::Callback::from_function([] {}));
      hub.cancel_timer(id);
    }
    EXPECT_EQ(hub.pending_timers(), 1u);  // g's sleep
    EXPECT_LE(hub.timer_heap_entries(), 65u);
    g->join();
  });
}

// A random mix of spawns, sleeps, joins and kills under a random policy keeps every invariant of
// the core and the timer heap after every step (verify_each_step aborts on a broken one).
TEST(SimHub, InvariantsHoldAfterEveryStep) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    tendril::SimOptions options;
    options.verify_each_step = true;
    SimHub hub(std::make_unique<tendril::Random>(seed), options);
    int finished = 0;
    tendril::run(hub, [&] {
      std::vector<Ref<tendril::Greenlet>> gs;
      for (int i = 0; i < 30; ++i) {
        gs.push_back(tendril::spawn([&, i] {
          tendril::sleep(std::chrono::milliseconds(tendril::random_below(5)));
          if (i % 3 == 0 && i > 0) gs[static_cast<std::size_t>(i - 1)]->kill(nullptr, false);
          if (i % 4 == 0) tendril::sleep(0s);
          if (i % 5 == 0 && i > 0) gs[static_cast<std::size_t>(i - 5)]->join(2ms);
          ++finished;
        }));
      }
      tendril::joinall(gs);
      int killed = 0;
      for (auto& g : gs) killed += g->killed() ? 1 : 0;
      EXPECT_EQ(finished + killed, 30) << "seed " << seed;
    });
    hub.verify();
  }
}

// reset() makes a used hub behave exactly like a new one: same interleaving, same choices.
TEST(SimHub, ResetHubMatchesFreshHub) {
  SimHub fresh{tendril::Random{21}};
  const Log expected = interleaving(fresh, 4);
  SimHub reused{tendril::Random{5}};
  interleaving(reused, 3);
  reused.reset(std::make_unique<tendril::Random>(21));
  EXPECT_EQ(interleaving(reused, 4), expected);
  EXPECT_EQ(reused.choices(), fresh.choices());
  EXPECT_EQ(reused.now_ns(), fresh.now_ns());
  tendril::run(reused, [&] {
    EXPECT_THROW(reused.reset(std::make_unique<tendril::Fifo>()), tendril::UsageError);
  });
}

// The simulated network: flow control makes a writer wait for a slow reader, and latencies drawn
// through the Chooser make the byte timing depend only on the seed.
TEST(SimNet, FlowControlAndSeededLatency) {
  auto run_once = [](std::uint64_t seed) {
    tendril::SimOptions options;
    options.net.buffer_bytes = 1000;
    options.net.max_latency_us = 500;
    SimHub hub(std::make_unique<tendril::Random>(seed), options);
    std::vector<std::int64_t> arrivals;
    tendril::run(hub, [&] {
      tendril::Listener l = tendril::listen({"server", 7});
      auto reader = tendril::spawn([&] {
        tendril::Stream s = l.accept();
        std::string first = s.recv(300);  // arrives after the drawn latency
        arrivals.push_back(tendril::now().count());
        for (;;) {
          tendril::sleep(1ms);  // then a slow reader
          std::string part = s.recv(300);
          if (part.empty()) return;
          arrivals.push_back(tendril::now().count());
        }
      });
      tendril::Stream c = tendril::connect({"server", 7});
      c.sendall(std::string(5000, 'x'));  // five times the buffer: must wait for the reader
      EXPECT_GE(tendril::now(), 10ms);
      c.shutdown();
      reader->join();
    });
    return arrivals;
  };
  const auto a = run_once(3);
  EXPECT_EQ(a, run_once(3));
  EXPECT_NE(a, run_once(4));
  EXPECT_GE(a.size(), 17u);  // 5000 bytes read 300 at a time
}

// When the hub ends a run itself (here the step limit) with main still alive, the other
// greenlets unwind first, while main's locals (the Lock they hold) still exist; main dies last.
TEST(SimHub, StepLimitTeardownUnwindsOthersBeforeMain) {
  tendril::SimOptions options;
  options.max_steps = 1000;
  SimHub hub(options);
  std::vector<std::string> log;
  std::string what;
  try {
    tendril::run(hub, [&] {
      struct Alive {
        std::vector<std::string>* log;
        bool alive = true;
        ~Alive() {
          alive = false;
          log->push_back("main's locals die");
        }
      } main_local{&log};
      tendril::Lock lock("mains");
      auto spinner = tendril::spawn("spinner", [&] {
        std::lock_guard<tendril::Lock> guard(lock);  // released while unwinding: lock must live
        struct Note {
          std::vector<std::string>* log;
          Alive* main_local;
          ~Note() { log->push_back(main_local->alive ? "spinner unwinds first" : "too late"); }
        } note{&log, &main_local};
        for (;;) tendril::sleep(0s);
      });
      spinner->join();
    });
  } catch (const tendril::HubError& e) {
    what = e.what();
  }
  EXPECT_EQ(what.rfind("tendril::SimHub: step limit of 1000 reached at virtual time", 0), 0u)
      << what;
  EXPECT_EQ(log, (std::vector<std::string>{"spinner unwinds first", "main's locals die"}));
  EXPECT_EQ(hub.live_greenlets(), 0u);
}

// A kill ends its target's wait before the target's queued sleep(0) wakeup runs: that wakeup
// would do nothing, so no policy is offered it as an alternative (it used to be one, and every
// policy spent choices on it).
TEST(SimHub, StaleWakeupsAreNotOffered) {
  struct Watch final : tendril::Chooser {
    std::vector<Ref<tendril::Greenlet>> watched;
    int choices = 0;
    int offered_dead = 0;
    tendril::Random rng{7};
    std::uint32_t choose(const tendril::ChoicePoint& p) override {
      ++choices;
      if (p.kind == tendril::ChoiceKind::ready) {
        for (std::uint32_t i = 0; i < p.n; ++i) {
          for (const auto& g : watched) {
            if (g->dead() && g->id() == p.key(i)) ++offered_dead;
          }
        }
      }
      return rng.below(p.n);
    }
  };
  auto chooser = std::make_unique<Watch>();
  Watch* watch = chooser.get();
  SimHub hub(std::move(chooser));
  int killed = 0;
  tendril::run(hub, [&] {
    for (int round = 0; round < 20; ++round) {
      auto spinner = tendril::spawn("spinner", [] {
        for (;;) tendril::sleep(0s);
      });
      auto other = tendril::spawn("other", [] {
        for (int k = 0; k < 3; ++k) tendril::sleep(0s);
      });
      watch->watched.push_back(spinner);
      tendril::sleep(0s);
      tendril::sleep(0s);
      spinner->kill(nullptr, false);  // queued: the spinner's own wakeup is queued too
      other->join();
      spinner->join();
      killed += spinner->dead() ? 1 : 0;
    }
  });
  EXPECT_EQ(killed, 20);
  EXPECT_GT(watch->choices, 40);
  EXPECT_EQ(watch->offered_dead, 0);
}

// The stale alternatives that no kill makes. StaleWatch answers at random and counts, at each
// ready choice, the alternatives its oracle says would do nothing if chosen. Each scenario runs
// 40 rounds beside two yielding greenlets, so that the choices are many and varied. (With the
// pruning off, the counts were 116, 8, 8, 120 and 17.)
namespace {

// Counts is what a StaleWatch saw; the test owns it (the hub, and its chooser, end first).
struct Counts {
  int ready_choices = 0;
  int offered_stale = 0;
};

struct StaleWatch final : tendril::Chooser {
  std::function<bool(const tendril::Alternative&)> stale;
  Counts* counts = nullptr;
  tendril::Random rng{11};
  std::uint32_t choose(const tendril::ChoicePoint& p) override {
    if (p.kind == tendril::ChoiceKind::ready) {
      ++counts->ready_choices;
      for (std::uint32_t i = 0; i < p.n; ++i) {
        if (stale(p.alternative(i))) ++counts->offered_stale;
      }
    }
    return rng.below(p.n);
  }
};

// run_rounds() runs round() 40 times on a SimHub answered by a StaleWatch with oracle `stale`,
// two yielders beside it, and returns what it saw.
Counts run_rounds(std::function<bool(const tendril::Alternative&)> stale,
                  const std::function<void()>& round) {
  Counts counts;
  auto chooser = std::make_unique<StaleWatch>();
  chooser->stale = std::move(stale);
  chooser->counts = &counts;
  SimHub hub(std::move(chooser));
  tendril::run(hub, [&] {
    bool done = false;
    std::vector<Ref<tendril::Greenlet>> noise;
    for (int i = 0; i < 2; ++i) {
      noise.push_back(tendril::spawn("noise", [&] {
        while (!done) tendril::sleep(0s);
      }));
    }
    for (int r = 0; r < 40; ++r) round();
    done = true;
    tendril::joinall(noise);
  });
  return counts;
}

// An object's notification is idle when it would wake nobody: cancelled (no owner), no waiter
// left, or a semaphore with no permit.
bool idle_notification(const tendril::Alternative& a) {
  if (a.action != tendril::Action::notify) return false;
  if (a.object == nullptr) return true;
  if (const auto* sem = dynamic_cast<const tendril::Semaphore*>(a.object)) {
    return sem->waiter_count() == 0 || !sem->ready();
  }
  if (const auto* l = dynamic_cast<const tendril::Linkable*>(a.object)) {
    return l->waiter_count() == 0;
  }
  if (const auto* q = dynamic_cast<const tendril::Queue<int>*>(a.object)) {
    return !((q->putters() > 0 && !q->full()) || (q->getters() > 0 && q->qsize() > 0));
  }
  return false;
}

}  // namespace

// wait() for the first of two set events: once it has woken, the other event's queued
// notification has nobody left to wake (gevent cancels it; so does tendril).
TEST(SimHub, TheSecondSourceOfAWaitIsNotOffered) {
  int woken = 0;
  const Counts seen = run_rounds(idle_notification, [&] {
    tendril::Event a("a");
    tendril::Event b("b");
    auto w = tendril::spawn("w", [&] { woken += tendril::wait({a, b}, std::nullopt, 1).size(); });
    tendril::sleep(0s);
    a.set();
    b.set();
    w->join();
  });
  EXPECT_EQ(woken, 40);
  EXPECT_GT(seen.ready_choices, 200);
  EXPECT_EQ(seen.offered_stale, 0);
}

// A permit taken at once (acquire without waiting) while the release's notification is queued
// leaves that notification nothing to give.
TEST(SimHub, ANotificationWithNoPermitLeftIsNotOffered) {
  int acquired = 0;
  const Counts seen = run_rounds(idle_notification, [&] {
    tendril::Semaphore sem(0);
    auto w = tendril::spawn("w", [&] { acquired += sem.acquire() ? 1 : 0; });
    auto t = tendril::spawn("t", [&] {
      tendril::sleep(0s);
      if (sem.acquire(false)) {
        ++acquired;
        tendril::sleep(0s);  // holds the permit over a choice
        sem.release();
      }
    });
    tendril::sleep(0s);
    sem.release();
    tendril::joinall({w, t});
  });
  EXPECT_GE(acquired, 40);
  EXPECT_EQ(seen.offered_stale, 0);
}

// An item taken at once (get without waiting) while the put's unlock is queued leaves the
// unlock nothing to hand the waiting getter.
TEST(SimHub, AQueueUnlockWithNothingToMoveIsNotOffered) {
  int got = 0;
  const Counts seen = run_rounds(idle_notification, [&] {
    tendril::Queue<int> q;
    auto w = tendril::spawn("w", [&] { got += q.get(); });
    auto t = tendril::spawn("t", [&] {
      tendril::sleep(0s);
      if (q.empty()) return;
      const int item = q.get();  // at once, while the unlock for w may be queued
      tendril::sleep(0s);        // holds it over a choice
      q.put(item * 10);
    });
    tendril::sleep(0s);
    q.put(1);
    tendril::joinall({w, t});
  });
  EXPECT_GE(got, 40);
  EXPECT_EQ(seen.offered_stale, 0);
}

// A wait armed with two wake_callback()s (a primitive author's select): the first to run ends
// the wait, and the second is stale from then on.
TEST(SimHub, TheSecondWakeupOfAWaitIsNotOffered) {
  int woke = 0;
  std::uint64_t woken_id = 0;
  const auto stale = [&](const tendril::Alternative& a) {
    return a.action == tendril::Action::wake && a.greenlet_id == woken_id;
  };
  const Counts seen = run_rounds(stale, [&] {
    auto w = tendril::spawn("w", [&] {
      tendril::Hub& hub = *tendril::current_hub_or_null();
      const tendril::WaitToken token = hub.begin_wait("test");
      auto arm = [&hub, token] { hub.schedule(tendril::Hub::wake_callback(token)); };
      auto arm1 = tendril::spawn("arm1", arm);
      auto arm2 = tendril::spawn("arm2", arm);
      hub.park(token, "test select", nullptr);
      woken_id = tendril::getcurrent()->id();  // from here on, no wake_callback() for it
      ++woke;
      tendril::sleep(0s);
      tendril::sleep(0s);
      tendril::joinall({arm1, arm2});  // the token must not outlive this greenlet
    });
    w->join();
    woken_id = 0;
  });
  EXPECT_EQ(woke, 40);
  EXPECT_EQ(seen.offered_stale, 0);
}

// A joiner killed after its target died but before the death notification ran leaves that
// notification no link to run.
TEST(SimHub, ADeathNotificationWithNoLinkLeftIsNotOffered) {
  int killed = 0;
  std::uint64_t target_id = 0;
  Ref<tendril::Greenlet> joiner;
  const auto stale = [&](const tendril::Alternative& a) {
    return a.action == tendril::Action::links && a.greenlet_id == target_id && joiner &&
           joiner->dead();
  };
  const Counts seen = run_rounds(stale, [&] {
    auto target = tendril::spawn("target", [] { tendril::sleep(0s); });
    target_id = target->id();
    joiner = tendril::spawn("joiner", [&] { target->join(); });
    while (!target->dead()) tendril::sleep(0s);
    joiner->kill(nullptr, false);
    joiner->join();
    killed += joiner->killed() ? 1 : 0;
    joiner = nullptr;
  });
  EXPECT_GT(killed, 0);
  EXPECT_EQ(seen.offered_stale, 0);
}

// An exception leaving main kills the others first. One that catches GreenletExit and blocks again
// is unwound by force after the rounds of kills, still before main's locals die; then main unwinds
// and run() rethrows its exception.
TEST(SimHub, MainsExceptionUnwindsAStubbornGreenletBeforeMainsLocals) {
  SimHub hub;
  Log log;
  std::string what;
  ::testing::internal::CaptureStderr();
  try {
    tendril::run(hub, [&] {
      struct Alive {
        Log* log;
        bool alive = true;
        ~Alive() {
          alive = false;
          log->push_back("main's locals die");
        }
      } main_local{&log};
      auto stubborn = tendril::spawn("stubborn", [&] {
        struct Note {
          Log* log;
          Alive* main_local;
          ~Note() { log->push_back(main_local->alive ? "stubborn unwinds first" : "too late"); }
        } note{&log, &main_local};
        int kills = 0;
        for (;;) {
          try {
            tendril::Event().wait();
          } catch (const tendril::GreenletExit&) {
            ++kills;
          }
          if (kills == 8) log.push_back("stubborn ignored 8 kills");
        }
      });
      tendril::sleep(0s);
      throw std::logic_error("main gives up");
    });
  } catch (const std::logic_error& e) {
    what = e.what();
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "tendril: 1 greenlet(s) survived GreenletExit after main raised; unwinding their "
            "stacks by force\n");
  EXPECT_EQ(what, "main gives up");
  EXPECT_EQ(log, (Log{"stubborn ignored 8 kills", "stubborn unwinds first", "main's locals die"}));
  EXPECT_EQ(hub.live_greenlets(), 0u);
}

// After main returns, a greenlet that ignores every GreenletExit is unwound by force: its
// destructors run (once, on its own stack; under ASan with no stale poison left there) and the
// hub says so on stderr.
TEST(SimHub, StubbornGreenletIsUnwoundByForceAfterMainReturns) {
  SimHub hub;
  Log log;
  ::testing::internal::CaptureStderr();
  tendril::run(hub, [&] {
    tendril::spawn("stubborn", [&] {
      struct Note {
        Log* log;
        ~Note() { log->push_back("stubborn unwinds"); }
      } note{&log};
      for (int kills = 0;;) {
        try {
          tendril::Event().wait();
        } catch (const tendril::GreenletExit&) {
          log.push_back("kill " + std::to_string(++kills) + " ignored");
        }
      }
    });
    tendril::sleep(0s);
  });
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "tendril: 1 greenlet(s) survived GreenletExit after main returned; unwinding their "
            "stacks by force\n");
  EXPECT_EQ(log, (Log{"kill 1 ignored", "kill 2 ignored", "kill 3 ignored", "kill 4 ignored",
                      "kill 5 ignored", "kill 6 ignored", "kill 7 ignored", "kill 8 ignored",
                      "stubborn unwinds"}));
  EXPECT_EQ(hub.live_greenlets(), 0u);
}

// SystemExit raised by another greenlet reaches main at its blocking point and leaves it: the
// remaining greenlets die before main's locals.
TEST(SimHub, SystemExitLeavingMainKillsTheOthersFirst) {
  SimHub hub;
  Log log;
  int code = -1;
  try {
    tendril::run(hub, [&] {
      struct Alive {
        Log* log;
        bool alive = true;
        ~Alive() {
          alive = false;
          log->push_back("main's locals die");
        }
      } main_local{&log};
      auto sleeper = tendril::spawn("sleeper", [&] {
        struct Note {
          Log* log;
          Alive* main_local;
          ~Note() { log->push_back(main_local->alive ? "sleeper unwinds first" : "too late"); }
        } note{&log, &main_local};
        tendril::sleep(1h);
      });
      tendril::spawn("exiter", [] { throw tendril::SystemExit(3); });
      tendril::Event().wait();
    });
  } catch (const tendril::SystemExit& e) {
    code = e.code();
  }
  EXPECT_EQ(code, 3);
  EXPECT_EQ(log, (Log{"sleeper unwinds first", "main's locals die"}));
}

// A deadlock among many greenlets that join one another in a chain (no cycle: the last waits on
// an Event) is reported with every greenlet and no cycle line, each greenlet walked once.
TEST(SimHub, DeadlockReportOfALongJoinChain) {
  SimHub hub;
  std::string report;
  try {
    tendril::run(hub, [] {
      tendril::Event never("never");
      std::vector<tendril::Ref<tendril::Greenlet>> chain(5000);
      chain[4999] = tendril::spawn([&never] { never.wait(); });
      for (int i = 4998; i >= 0; --i) {
        chain[i] = tendril::spawn([next = chain[i + 1]] { next->join(); });
      }
      chain[0]->join();
    });
  } catch (const tendril::Deadlock& e) {
    report = e.what();
  }
  EXPECT_NE(report.find("and 5001 greenlets are blocked:"), std::string::npos)
      << report.substr(0, 300);
  EXPECT_EQ(report.find("wait-for cycle"), std::string::npos);
  EXPECT_NE(report.find("#2 blocked in Event.wait on Event#1 'never'"), std::string::npos);
  // Past the first 20, the joins are one line.
  EXPECT_NE(report.find("\n  and 4981 more blocked in join on other greenlets"), std::string::npos)
      << report.substr(report.size() > 400 ? report.size() - 400 : 0);
  EXPECT_EQ(std::count(report.begin(), report.end(), '\n'), 21);
}

// A deadlock among twenty thousand greenlets is a screenful: the first 20 one by one, the
// rest grouped by what they wait on, in order of first appearance, at most 10 groups and a line
// for the others.
TEST(SimHub, DeadlockReportOfManyGreenletsIsAScreenful) {
  SimHub hub;
  std::string report;
  try {
    tendril::run(hub, [] {
      tendril::Event ev("ev");
      std::vector<tendril::Event> others(12);
      std::vector<tendril::Ref<tendril::Greenlet>> all;
      for (int i = 0; i < 20'000; ++i) all.push_back(tendril::spawn([&ev] { ev.wait(); }));
      for (auto& e : others) all.push_back(tendril::spawn([&e] { e.wait(); }));
      tendril::joinall(all);
    });
  } catch (const tendril::Deadlock& e) {
    report = e.what();
  }
  const std::size_t tail = report.find("\n  and ");
  ASSERT_NE(tail, std::string::npos) << report.substr(0, 2000);
  EXPECT_EQ(report.substr(tail),
            "\n  and 19981 more blocked in Event.wait on Event#1 'ev'"
            "\n  and 1 more blocked in Event.wait on Event#2"
            "\n  and 1 more blocked in Event.wait on Event#3"
            "\n  and 1 more blocked in Event.wait on Event#4"
            "\n  and 1 more blocked in Event.wait on Event#5"
            "\n  and 1 more blocked in Event.wait on Event#6"
            "\n  and 1 more blocked in Event.wait on Event#7"
            "\n  and 1 more blocked in Event.wait on Event#8"
            "\n  and 1 more blocked in Event.wait on Event#9"
            "\n  and 1 more blocked in Event.wait on Event#10"
            "\n  and 3 more in 3 other kinds of wait");
  EXPECT_NE(report.find("and 20013 greenlets are blocked:"), std::string::npos);
  EXPECT_EQ(std::count(report.begin(), report.end(), '\n'), 31);
}

// compute_for() on SimHub: the virtual clock moves by exactly d and nothing runs meanwhile;
// timers that came due fire at the next wait in deadline order (the Timeout of 50 ms before a
// sleep armed after the work); a negative duration is refused.
TEST(SimHub, ComputeForAdvancesVirtualTime) {
  SimHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    auto sleeper = tendril::spawn([&] {
      tendril::sleep(30ms);
      log.push_back("sleeper woke at " + std::to_string(tendril::now().count()));
    });
    tendril::sleep(0s);  // the sleeper is waiting
    try {
      tendril::TimeoutScope t(50ms);
      tendril::compute_for(80ms);
      log.push_back("computed at " + std::to_string(tendril::now().count()));
      tendril::sleep(10ms);
    } catch (const tendril::Timeout&) {
      log.push_back("timeout at " + std::to_string(tendril::now().count()));
    }
    sleeper->join();
    try {
      tendril::compute_for(-1ns);
    } catch (const tendril::UsageError& e) {
      log.push_back(e.what());
    }
  });
  EXPECT_EQ(log, (std::vector<std::string>{"computed at 80000000", "sleeper woke at 80000000",
                                           "timeout at 80000000",
                                           "tendril::compute_for: negative duration (-1 ns)"}));
}
