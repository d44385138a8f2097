// SPDX-License-Identifier: Apache-2.0
// direct_switch_test.cpp: on SimHub's FIFO policy a greenlet that parks takes the next plain
// resume, or the next step of a pass (a queue's unlock pass, an Event's or Semaphore's
// notification), itself and switches straight to the greenlet it wakes (Hub::run_direct). These
// tests pin that it happens, that a run is the same step for step with and without it (an
// observer or verify_each_step turns it off; the orders of the queue and notification programs
// are gevent's, tests/gevent_twins/queue_semantics.py and primitives_semantics.py), that
// fail_run() ends a run as it did, also from inside a pass, and that a greenlet keeps its
// exception state; and, for sleep(0)'s short path (Hub::sleep0), the ready queue's rotate, a
// sleep(0) behind a wakeup, and a dead greenlet's leftover wakeup. The livelock bound and the step
// limit are pinned by SimHub's own tests (tests/sim/sim_hub_test.cpp), whose exact messages now
// come through direct switches and the short path.
#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "tendril/sim.hpp"

using namespace std::chrono_literals;
using tendril::SimHub;

namespace {

// Three greenlets, each logging then yielding four times.
std::vector<std::string> three_yielders(SimHub& hub) {
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    auto body = [&](const std::string& name) {
      for (int i = 0; i < 4; ++i) {
        log.push_back(name + std::to_string(i));
        tendril::sleep(0s);
      }
    };
    auto a = tendril::spawn("a", body, std::string("a"));
    auto b = tendril::spawn("b", body, std::string("b"));
    auto c = tendril::spawn("c", body, std::string("c"));
    tendril::joinall({a, b, c});
  });
  return log;
}

// A program that touches every kind of wakeup: sleep(0), timers, an Event, a Queue, a Lock, a
// kill delivered while its target's yield is queued, a wait that times out and one that does not.
struct Mixed {
  std::vector<std::string> log;
  std::uint64_t steps = 0;
  std::uint64_t direct = 0;
};

Mixed mixed_program(SimHub& hub) {
  Mixed out;
  auto& log = out.log;
  auto at = [&hub](const std::string& what) {
    return what + "@" + std::to_string(hub.now_ns() / 1'000'000) + "ms";
  };
  tendril::run(hub, [&] {
    tendril::Event go("go");
    tendril::Queue<int> q;
    tendril::Lock lock;
    int shared = 0;
    std::vector<tendril::Ref<tendril::Greenlet>> workers;
    for (int w = 0; w < 4; ++w) {
      workers.push_back(tendril::spawn("w" + std::to_string(w), [&, w] {
        try {
          go.wait();
          for (int i = 0; i < 6; ++i) {
            tendril::sleep(0s);
            if ((i + w) % 3 == 0) tendril::sleep(1ms);
            {
              std::lock_guard<tendril::Lock> hold(lock);
              const int seen = shared;
              tendril::sleep(0s);
              shared = seen + 1;
            }
            q.put(w * 100 + i);
            log.push_back(at("w" + std::to_string(w) + " put " + std::to_string(w * 100 + i)));
          }
          if (w == 3) {
            const bool woke = go.wait(2ms);  // already set: returns at once
            log.push_back(at(std::string("w3 wait ") + (woke ? "true" : "false")));
          }
        } catch (const tendril::GreenletExit&) {
          log.push_back(at("w" + std::to_string(w) + " killed"));
          throw;
        }
      }));
    }
    tendril::sleep(0s);
    go.set();
    for (int n = 0; n < 10; ++n) log.push_back(at("got " + std::to_string(q.get())));
    workers[1]->kill_nowait();
    tendril::sleep(0s);
    tendril::Event never("never");
    log.push_back(at(std::string("never ") + (never.wait(3ms) ? "set" : "timed out")));
    tendril::joinall(workers);
    while (!q.empty()) log.push_back(at("drained " + std::to_string(q.get())));
    log.push_back("shared " + std::to_string(shared));
  });
  out.steps = hub.steps();
  out.direct = hub.direct_steps();
  return out;
}

class Silent final : public tendril::Observer {};

// expect_the_same_through_the_hub() runs program again where the hub makes every switch (an
// observer is installed) and where it checks every step (verify_each_step): no direct step, and
// the same log and step count as `with`, its run with direct steps.
void expect_the_same_through_the_hub(Mixed (*program)(SimHub&), const Mixed& with) {
  SimHub observed;
  Silent silent;
  observed.set_observer(&silent);
  const Mixed without = program(observed);
  EXPECT_EQ(without.direct, 0u);
  EXPECT_EQ(without.log, with.log);
  EXPECT_EQ(without.steps, with.steps);

  tendril::SimOptions verify;
  verify.verify_each_step = true;
  SimHub verified(verify);
  const Mixed checked = program(verified);
  EXPECT_EQ(checked.direct, 0u);
  EXPECT_EQ(checked.log, with.log);
  EXPECT_EQ(checked.steps, with.steps);
}

// expect_the_same_observed() runs program again with an observer installed, where the hub makes
// every switch: no direct step, and the same log and step count as `direct`'s run gave.
template <class Program>
void expect_the_same_observed(Program program, const std::vector<std::string>& log,
                              const SimHub& direct) {
  SimHub observed;
  Silent silent;
  observed.set_observer(&silent);
  EXPECT_EQ(program(observed), log);
  EXPECT_EQ(observed.direct_steps(), 0u);
  EXPECT_EQ(observed.steps(), direct.steps());
}

}  // namespace

// A round of sleep(0) among three greenlets: after the hub starts the round, each greenlet that
// yields switches straight to the next one. The hub takes the first resumption of each round it
// starts and the one that finds the next greenlet dead; the greenlets take the other nine.
TEST(DirectSwitch, ARoundOfYieldsGoesFromGreenletToGreenlet) {
  SimHub hub;
  const std::vector<std::string> log = three_yielders(hub);
  EXPECT_EQ(log, (std::vector<std::string>{"a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2",
                                           "a3", "b3", "c3"}));
  EXPECT_EQ(hub.direct_steps(), 9u);

  // With an observer the hub makes every switch, and the order is the same.
  expect_the_same_observed(three_yielders, log, hub);
}

// One greenlet alone: its own yield is the next step, so sleep(0) returns without a switch.
TEST(DirectSwitch, AGreenletAloneYieldsWithoutSwitching) {
  SimHub hub;
  int rounds = 0;
  tendril::run(hub, [&] {
    tendril::sleep(0s);  // the first yield is taken by the hub's loop
    const std::uint64_t before = hub.direct_steps();
    for (; rounds < 1000; ++rounds) tendril::sleep(0s);
    EXPECT_EQ(hub.direct_steps() - before, 1000u);
  });
  EXPECT_EQ(rounds, 1000);
}

// Every kind of wakeup, with and without direct switches: the same events at the same virtual
// times, the same number of steps.
TEST(DirectSwitch, AMixedRunIsTheSameStepForStepWithoutThem) {
  SimHub direct;
  const Mixed with = mixed_program(direct);
  EXPECT_GT(with.direct, 0u);
  expect_the_same_through_the_hub(mixed_program, with);

  // The run itself: main takes 10 items as they come, w1 dies of its kill after 4 puts (its item
  // 103 is not lost), the timed waits answer as they should, the lock keeps every increment.
  EXPECT_EQ(with.log,
            (std::vector<std::string>{
                "w1 put 100@0ms",  "got 100@0ms",      "w2 put 200@0ms",      "got 200@0ms",
                "w1 put 101@0ms",  "got 101@0ms",      "w0 put 0@1ms",        "got 0@1ms",
                "w3 put 300@1ms",  "got 300@1ms",      "w2 put 201@1ms",      "got 201@1ms",
                "w1 put 102@1ms",  "got 102@1ms",      "w0 put 1@1ms",        "got 1@1ms",
                "w3 put 301@1ms",  "got 301@1ms",      "w2 put 202@1ms",      "got 202@1ms",
                "w1 put 103@1ms",  "w1 killed@1ms",    "w0 put 2@1ms",        "w3 put 302@1ms",
                "w2 put 203@1ms",  "w0 put 3@2ms",     "w3 put 303@2ms",      "w2 put 204@2ms",
                "w0 put 4@2ms",    "w3 put 304@2ms",   "w2 put 205@2ms",      "w0 put 5@2ms",
                "w3 put 305@2ms",  "w3 wait true@2ms", "never timed out@4ms", "drained 103@4ms",
                "drained 2@4ms",   "drained 302@4ms",  "drained 203@4ms",     "drained 3@4ms",
                "drained 303@4ms", "drained 204@4ms",  "drained 4@4ms",       "drained 304@4ms",
                "drained 205@4ms", "drained 5@4ms",    "drained 305@4ms",     "shared 22"}));
}

// fail_run() from a greenlet in the middle of a round ends the run as it does when the hub makes
// every switch: the chain of direct switches stops, the hub tears down (each greenlet's queued
// yield is stale there: the kill at its sleep(0) is the next thing it sees) and run() throws the
// error.
TEST(DirectSwitch, FailRunInARoundEndsTheRunAsTheHubWould) {
  SimHub hub;
  std::vector<std::string> log;
  try {
    tendril::run(hub, [&] {
      auto a = tendril::spawn("a", [&] {
        for (int i = 0;; ++i) {
          log.push_back("a" + std::to_string(i));
          tendril::sleep(0s);
        }
      });
      auto b = tendril::spawn("b", [&] {
        for (int i = 0;; ++i) {
          log.push_back("b" + std::to_string(i));
          if (i == 3) hub.fail_run(std::make_exception_ptr(std::runtime_error("b gave up")));
          tendril::sleep(0s);
        }
      });
      tendril::joinall({a, b});
    });
    ADD_FAILURE() << "run() returned";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "b gave up");
  }
  EXPECT_EQ(log, (std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3"}));
  EXPECT_GT(hub.direct_steps(), 0u);
  EXPECT_EQ(hub.live_greenlets(), 0u);
}

// Greenlets yielding inside catch blocks keep their own exceptions across direct switches, also
// when the exception they handle changed since they last went through the hub.
TEST(DirectSwitch, EachGreenletKeepsItsExceptionAcrossDirectSwitches) {
  SimHub hub;
  std::vector<std::string> seen;
  auto current = [] {
    try {
      throw;
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
  };
  tendril::run(hub, [&] {
    auto body = [&](const std::string& name) {
      try {
        throw std::runtime_error(name);
      } catch (...) {
        for (int i = 0; i < 2; ++i) {
          try {
            throw std::runtime_error(name + std::to_string(i));
          } catch (...) {
            tendril::sleep(0s);
            seen.push_back(name + " in " + current());
          }
          tendril::sleep(0s);
          seen.push_back(name + " back in " + current());
        }
      }
    };
    auto a = tendril::spawn(body, std::string("a"));
    auto b = tendril::spawn(body, std::string("b"));
    tendril::joinall({a, b});
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"a in a0", "b in b0", "a back in a", "b back in b",
                                            "a in a1", "b in b1", "a back in a", "b back in b"}));
  EXPECT_GT(hub.direct_steps(), 0u);
}

namespace {

// A callback that only counts its discards (ReadyQueue discards what is left when destroyed).
int discarded = 0;
void count_discard(tendril::Callback&, bool run) {
  if (!run) ++discarded;
}

std::vector<std::uint64_t> args_in_order(const tendril::ReadyQueue& q) {
  std::vector<std::uint64_t> args;
  for (std::size_t i = 0; i < q.size(); ++i) args.push_back(q.peek(i).arg);
  return args;
}

}  // namespace

// sleep(0)'s short path moves the front out and its own wakeup in at the back in one step. With
// the ring full, the back is the front's own slot: the front must come out before it is reused.
TEST(DirectSwitch, RotateOnAFullRingKeepsTheOrder) {
  discarded = 0;
  {
    tendril::ReadyQueue q;
    for (std::uint64_t i = 0; i < 64; ++i) q.push({&count_discard, nullptr, i});  // capacity 64
    std::vector<std::uint64_t> expected;
    for (std::uint64_t i = 1; i <= 64; ++i) expected.push_back(i);
    EXPECT_EQ(q.rotate({&count_discard, nullptr, 64}).arg, 0u);
    EXPECT_EQ(args_in_order(q), expected);
    // Again across the ring's end: the head has moved on, so the back wraps around.
    for (std::uint64_t i = 65; i < 65 + 70; ++i) {
      EXPECT_EQ(q.rotate({&count_discard, nullptr, i}).arg, i - 64);
      expected.erase(expected.begin());
      expected.push_back(i);
    }
    EXPECT_EQ(args_in_order(q), expected);
    EXPECT_EQ(q.size(), 64u);
  }
  EXPECT_EQ(discarded, 64);
}

// A sleep(0) behind another greenlet's wakeup (a wake_callback(), not a yield) goes the general
// way, whose take_direct() still switches straight to the woken greenlet; the run is the same
// step for step as when the hub makes every switch.
TEST(DirectSwitch, ASleepZeroBehindAWakeupStillSwitchesDirectly) {
  auto program = [](SimHub& hub) {
    std::vector<std::string> log;
    tendril::run(hub, [&] {
      tendril::WaitToken token;
      auto w = tendril::spawn("w", [&] {
        for (int i = 0; i < 3; ++i) {
          token = hub.begin_wait("test");
          hub.park(token, "test", nullptr);
          log.push_back("w woke " + std::to_string(i));
        }
      });
      tendril::sleep(0s);  // w starts and parks
      for (int i = 0; i < 3; ++i) {
        hub.schedule(tendril::Hub::wake_callback(token));
        log.push_back("main wakes " + std::to_string(i));
        tendril::sleep(0s);
        log.push_back("main back " + std::to_string(i));
      }
      w->join();
    });
    return log;
  };
  SimHub direct;
  const std::vector<std::string> log = program(direct);
  EXPECT_EQ(log, (std::vector<std::string>{"main wakes 0", "w woke 0", "main back 0",
                                           "main wakes 1", "w woke 1", "main back 1",
                                           "main wakes 2", "w woke 2", "main back 2"}));
  // Each sleep(0) hands over to w's wakeup and each park of w to main's yield, directly; w's
  // last wakeup ends in its death, which goes to the hub.
  EXPECT_EQ(direct.direct_steps(), 5u);

  expect_the_same_observed(program, log, direct);
}

// A greenlet that dies with its own wakeup still queued (it began a wait, queued the wakeup and
// threw before parking) leaves a callback that looks like any sleep(0) at the front. Its death
// moves its wait on, so sleep(0)'s short path sees it stale and lets the hub drop it, instead of
// switching into a finished greenlet.
TEST(DirectSwitch, AWakeupLeftByADeadGreenletIsNeverTaken) {
  SimHub hub;
  std::vector<std::string> log;
  std::vector<std::string> errors;
  hub.set_error_handler([&](tendril::Greenlet& g, std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      errors.push_back(g.name() + ": " + e.what());
    }
  });
  tendril::run(hub, [&] {
    auto a = tendril::spawn("a", [&] {
      for (int i = 0; i < 4; ++i) {
        log.push_back("a" + std::to_string(i));
        tendril::sleep(0s);
      }
    });
    auto x = tendril::spawn("x", [&] {
      log.push_back("x0");
      tendril::sleep(0s);
      log.push_back("x1");
      tendril::Hub& h = tendril::current_hub();
      h.schedule(tendril::Hub::yield_callback(h.begin_wait("test")));
      throw std::runtime_error("x left its wakeup queued");
    });
    tendril::joinall({a, x});
  });
  EXPECT_EQ(log, (std::vector<std::string>{"a0", "x0", "a1", "x1", "a2", "a3"}));
  EXPECT_EQ(errors, (std::vector<std::string>{"x: x left its wakeup queued"}));
  EXPECT_EQ(hub.live_greenlets(), 0u);
}

namespace {

// Queues of every kind, with every way a queue's unlock pass goes: getters served one after the
// other in one pass, putters blocked on a bounded queue (their items are moved in on the hub's
// stack), a Channel, a get that times out, a queue destroyed by the getter its pass woke while
// another getter still waits on it.
Mixed queue_program(SimHub& hub) {
  Mixed out;
  auto& log = out.log;
  tendril::run(hub, [&] {
    tendril::Queue<int> q(2, "q");
    tendril::LifoQueue<int> lifo(0, "lifo");
    tendril::Channel<int> ch("ch");
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    for (int g = 0; g < 3; ++g) {
      gs.push_back(tendril::spawn("g" + std::to_string(g), [&, g] {
        for (int i = 0; i < 4; ++i) {
          const int v = q.get();
          log.push_back("g" + std::to_string(g) + " got " + std::to_string(v));
          lifo.put(v);
          if (i % 2 == 0) tendril::sleep(0s);  // the pass goes on while g waits for its turn
        }
      }));
    }
    for (int p = 0; p < 2; ++p) {
      gs.push_back(tendril::spawn("p" + std::to_string(p), [&, p] {
        for (int i = 0; i < 6; ++i) {
          q.put(p * 10 + i);
          log.push_back("p" + std::to_string(p) + " put " + std::to_string(p * 10 + i));
        }
      }));
    }
    gs.push_back(tendril::spawn("cp", [&] {
      for (int i = 0; i < 3; ++i) {
        ch.put(100 + i);
        log.push_back("cp put " + std::to_string(100 + i));
      }
    }));
    gs.push_back(tendril::spawn("cg", [&] {
      for (int i = 0; i < 3; ++i) log.push_back("cg got " + std::to_string(ch.get()));
    }));
    gs.push_back(tendril::spawn("late", [&] {
      tendril::Queue<int> never(0, "never");
      try {
        never.get(true, 1ms);
      } catch (const tendril::Empty&) {
        log.push_back("late: empty");
      }
    }));
    tendril::joinall(gs);
    while (!lifo.empty()) log.push_back("lifo " + std::to_string(lifo.get()));

    auto box = std::make_unique<tendril::Queue<int>>(0, "box");
    auto a = tendril::spawn("a", [&] {
      log.push_back("a got " + std::to_string(box->get()));
      box.reset();
      log.push_back("a destroyed box");
      tendril::sleep(0s);
      log.push_back("a after");
    });
    auto b = tendril::spawn("b", [&, raw = box.get()] {
      try {
        raw->get();
        log.push_back("b got an item");
      } catch (const tendril::GreenletExit&) {
        log.push_back("b killed");
        throw;
      }
    });
    tendril::sleep(0s);  // a and b block in get()
    box->put(1);
    box->put(2);  // one pass: it wakes a, which destroys the queue, so it never wakes b
    tendril::sleep(0s);
    log.push_back("main: box " + std::string(box ? "alive" : "gone"));
    a->join();
    b->kill();
  });
  out.steps = hub.steps();
  out.direct = hub.direct_steps();
  return out;
}

// Notifications of every kind, with every way one goes: an Event's waiters woken one after the
// other, one of them waiting again while the notification runs (it waits behind the others),
// one clearing the Event and one waiting again after that (a waiter for the next notification,
// which one setting the Event again during this one queues at its end, on the hub's stack), a
// rawlink among the waiters (run on the hub's stack); a Semaphore whose notification gives the
// permits its first waiter released to the next ones and stops when none is left; a kill queued
// behind a notification; an Event destroyed by the waiter its notification woke while another
// still waits on it.
Mixed notify_program(SimHub& hub) {
  Mixed out;
  auto& log = out.log;
  tendril::run(hub, [&] {
    tendril::Event ev("ev");
    auto w = [&](int i) {
      ev.wait();
      log.push_back("w" + std::to_string(i) + " woke");
      if (i == 0) {
        ev.wait();  // set, its notification running: behind the others
        log.push_back("w0 again");
      } else if (i == 1) {
        ev.clear();
        log.push_back("w1 cleared");
      } else if (i == 2) {
        ev.wait();  // cleared: after the last waiter this notification wakes
        log.push_back("w2 again");
      } else if (i == 3) {
        ev.set();  // the notification is running: the next one is queued at its end
        log.push_back("w3 set");
      }
      log.push_back("w" + std::to_string(i) + " done");
    };
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 3; ++i) gs.push_back(tendril::spawn(w, i));
    tendril::sleep(0s);
    ev.rawlink([&] { log.push_back("rawlink"); });
    gs.push_back(tendril::spawn(w, 3));
    tendril::sleep(0s);
    ev.set();
    log.push_back("main set");
    tendril::joinall(gs);

    tendril::Semaphore sem(0, "sem");
    auto s = [&](int i) {
      sem.acquire();
      log.push_back("s" + std::to_string(i) + " got");
      if (i == 0) {
        sem.release();
        sem.release();
        log.push_back("s0 released 2");
      }
      tendril::sleep(0s);
      log.push_back("s" + std::to_string(i) + " done");
    };
    gs.clear();
    for (int i = 0; i < 4; ++i) gs.push_back(tendril::spawn(s, i));
    tendril::sleep(0s);
    sem.release();
    log.push_back("main released");
    tendril::sleep(0s);
    log.push_back(std::string("main: s3 dead ") + (gs[3]->dead() ? "True" : "False"));
    sem.release();
    tendril::joinall(gs);
    log.push_back("counter " + std::to_string(sem.counter()));

    tendril::Event kill_ev("kill_ev");
    auto a = tendril::spawn("a", [&] {
      kill_ev.wait();
      log.push_back("a woke");
    });
    auto b = tendril::spawn("b", [&] {
      try {
        kill_ev.wait();
        log.push_back("b woke");
      } catch (const tendril::GreenletExit&) {
        log.push_back("b killed");
        throw;
      }
    });
    auto c = tendril::spawn("c", [&] {
      kill_ev.wait();
      log.push_back("c woke");
    });
    tendril::sleep(0s);
    kill_ev.set();
    b->kill_nowait();  // queued behind the notification, which wakes b first
    tendril::joinall({a, b, c});

    auto box = std::make_unique<tendril::Event>("box");
    auto d = tendril::spawn("d", [&] {
      box->wait();
      log.push_back("d woke");
      box.reset();
      log.push_back("d destroyed box");
      tendril::sleep(0s);
      log.push_back("d after");
    });
    auto e = tendril::spawn("e", [&, raw = box.get()] {
      try {
        raw->wait();
        log.push_back("e woke");
      } catch (const tendril::GreenletExit&) {
        log.push_back("e killed");
        throw;
      }
    });
    tendril::sleep(0s);  // d and e wait
    box->set();          // its notification wakes d, which destroys the Event: it never wakes e
    tendril::sleep(0s);
    log.push_back("main: box " + std::string(box ? "alive" : "gone"));
    d->join();
    e->kill();
  });
  out.steps = hub.steps();
  out.direct = hub.direct_steps();
  return out;
}

}  // namespace

// Under run_direct() a queue's unlock pass stays at the front of the ready queue and the
// greenlets it wakes carry it on when they park: a put to a waiting getter and the getter's wakeup
// go from greenlet to greenlet. The run is the same step for step as when the hub makes every
// switch (an observer) or checks every step.
TEST(DirectSwitch, QueuePassesAreTheSameStepForStepWithoutThem) {
  SimHub direct;
  const Mixed with = queue_program(direct);
  expect_the_same_through_the_hub(queue_program, with);

  // gevent's order (tests/gevent_twins/queue_semantics.py, t_passes), then the queue destroyed
  // by the getter its pass woke: the pass ends there, and b stays blocked until killed.
  EXPECT_EQ(with.log,
            (std::vector<std::string>{
                "p0 put 0",       "p0 put 1",   "g0 got 0",   "p0 put 2",   "g1 got 1",
                "p1 put 10",      "g2 got 2",   "p0 put 3",   "cg got 100", "cp put 100",
                "cg got 101",     "cp put 101", "cg got 102", "cp put 102", "g0 got 10",
                "g0 got 3",       "p1 put 11",  "p1 put 12",  "g1 got 11",  "g1 got 12",
                "p0 put 4",       "p0 put 5",   "g2 got 4",   "g2 got 5",   "p1 put 13",
                "p1 put 14",      "g0 got 13",  "g1 got 14",  "p1 put 15",  "g2 got 15",
                "late: empty",    "lifo 15",    "lifo 14",    "lifo 13",    "lifo 5",
                "lifo 4",         "lifo 12",    "lifo 11",    "lifo 3",     "lifo 10",
                "lifo 2",         "lifo 1",     "lifo 0",     "a got 1",    "a destroyed box",
                "main: box gone", "a after",    "b killed"}));
  EXPECT_EQ(with.steps, 30u);
  EXPECT_EQ(with.direct, 9u);
}

// Two greenlets passing an item back and forth through two queues: after the hub starts the
// first pass, every put, pass and wakeup goes from greenlet to greenlet.
TEST(DirectSwitch, AQueuePingPongGoesFromGreenletToGreenlet) {
  auto program = [](SimHub& hub) {
    std::vector<std::string> log;
    tendril::run(hub, [&] {
      tendril::Queue<int> to_b, to_main;
      auto b = tendril::spawn("b", [&] {
        for (int i = 0; i < 4; ++i) {
          const int v = to_b.get();
          log.push_back("b got " + std::to_string(v));
          to_main.put(v + 1);
        }
      });
      for (int i = 0; i < 4; ++i) {
        to_b.put(i * 10);
        log.push_back("main got " + std::to_string(to_main.get()));
      }
      b->join();
    });
    return log;
  };
  SimHub direct;
  const std::vector<std::string> log = program(direct);
  EXPECT_EQ(log, (std::vector<std::string>{"b got 0", "main got 1", "b got 10", "main got 11",
                                           "b got 20", "main got 21", "b got 30", "main got 31"}));
  // Seven passes: to_b's first put finds b not waiting yet; main's first wakeup comes from a
  // pass the hub starts (b got there from its start, which the hub runs) and its last from one
  // the hub starts after b dies. The five in between are the greenlets' own.
  EXPECT_EQ(direct.direct_steps(), 5u);

  expect_the_same_observed(program, log, direct);
}

// fail_run() from a greenlet a pass woke: the pass still serves every getter it would have
// served (on the hub's stack now), then the run ends and run() throws the error.
TEST(DirectSwitch, FailRunInAQueuePassEndsTheRunAsTheHubWould) {
  auto program = [](SimHub& hub) {
    std::vector<std::string> log;
    try {
      tendril::run(hub, [&] {
        tendril::Queue<int> q;
        std::vector<tendril::Ref<tendril::Greenlet>> gs;
        for (int g = 0; g < 3; ++g) {
          gs.push_back(tendril::spawn("g" + std::to_string(g), [&, g] {
            for (;;) {
              const int v = q.get();
              log.push_back("g" + std::to_string(g) + " got " + std::to_string(v));
              if (v == 1) {
                hub.fail_run(std::make_exception_ptr(std::runtime_error("1 is one too many")));
              }
              tendril::sleep(0s);  // parks: the pass goes on to the next getter
            }
          }));
        }
        tendril::sleep(0s);  // the getters block
        for (int i = 0; i < 3; ++i) {
          q.put(3 * i);
          q.put(3 * i + 1);
          q.put(3 * i + 2);
          tendril::sleep(0s);
          log.push_back("main round " + std::to_string(i));
        }
        tendril::joinall(gs);
      });
      log.push_back("run() returned");
    } catch (const std::runtime_error& e) {
      log.push_back(std::string("run() threw: ") + e.what());
    }
    return log;
  };
  SimHub direct;
  const std::vector<std::string> log = program(direct);
  // g1 fails the run from inside the pass that woke it; the pass still wakes g2 (on the hub's
  // stack), and only then does the run end.
  EXPECT_EQ(log, (std::vector<std::string>{"g0 got 0", "g1 got 1", "g2 got 2",
                                           "run() threw: 1 is one too many"}));
  // main's sleep(0) starts the pass itself (the one direct step); in teardown the getters' queued
  // sleep(0) wakeups are stale, and each dies of the kill at its sleep(0).
  EXPECT_EQ(direct.direct_steps(), 1u);
  EXPECT_EQ(direct.live_greenlets(), 0u);
  expect_the_same_observed(program, log, direct);
}

// A Linkable's notification goes as a queue's unlock pass: it stays at the front of the ready
// queue and the greenlets it wakes carry it on when they park; a rawlink, or queueing the next
// notification, is the hub's. The run is the same step for step as when the hub makes every
// switch (an observer) or checks every step.
TEST(DirectSwitch, NotificationsAreTheSameStepForStepWithoutThem) {
  SimHub direct;
  const Mixed with = notify_program(direct);
  expect_the_same_through_the_hub(notify_program, with);

  // gevent's order (tests/gevent_twins/primitives_semantics.py, t_notify), then the Event
  // destroyed by the waiter its notification woke: the notification ends there, and e stays
  // blocked until killed.
  EXPECT_EQ(
      with.log,
      (std::vector<std::string>{
          "main set",        "w0 woke",        "w1 woke",  "w1 cleared", "w1 done",
          "w2 woke",         "rawlink",        "w3 woke",  "w3 set",     "w3 done",
          "w0 again",        "w0 done",        "w2 again", "w2 done",    "main released",
          "s0 got",          "s0 released 2",  "s1 got",   "s2 got",     "main: s3 dead False",
          "s0 done",         "s1 done",        "s2 done",  "s3 got",     "s3 done",
          "counter 0",       "a woke",         "b woke",   "c woke",     "d woke",
          "d destroyed box", "main: box gone", "d after",  "e killed"}));
  EXPECT_EQ(with.steps, 40u);
  EXPECT_EQ(with.direct, 8u);
}

// Two greenlets handing a permit back and forth through two Semaphores: after the hub starts
// the first notification, every release, notification and wakeup goes from greenlet to greenlet.
TEST(DirectSwitch, ASemaphorePingPongGoesFromGreenletToGreenlet) {
  auto program = [](SimHub& hub) {
    std::vector<std::string> log;
    tendril::run(hub, [&] {
      tendril::Semaphore to_b(0), to_main(0);
      auto b = tendril::spawn("b", [&] {
        for (int i = 0; i < 4; ++i) {
          to_b.acquire();
          log.push_back("b got " + std::to_string(i));
          to_main.release();
        }
      });
      for (int i = 0; i < 4; ++i) {
        to_b.release();
        to_main.acquire();
        log.push_back("main got " + std::to_string(i));
      }
      b->join();
    });
    return log;
  };
  SimHub direct;
  const std::vector<std::string> log = program(direct);
  EXPECT_EQ(log, (std::vector<std::string>{"b got 0", "main got 0", "b got 1", "main got 1",
                                           "b got 2", "main got 2", "b got 3", "main got 3"}));
  // Seven notifications: to_b's first release finds b not waiting yet; main's first wakeup comes
  // from a notification the hub starts (b got there from its start, which the hub runs) and its
  // last from one the hub starts after b dies. The five in between are the greenlets' own.
  EXPECT_EQ(direct.direct_steps(), 5u);

  expect_the_same_observed(program, log, direct);
}

// fail_run() from a greenlet a notification woke: the notification still wakes every waiter it
// would have woken (on the hub's stack now), then the run ends and run() throws the error.
TEST(DirectSwitch, FailRunInANotificationEndsTheRunAsTheHubWould) {
  auto program = [](SimHub& hub) {
    std::vector<std::string> log;
    try {
      tendril::run(hub, [&] {
        tendril::Event ev("ev");
        std::vector<tendril::Ref<tendril::Greenlet>> gs;
        for (int g = 0; g < 3; ++g) {
          gs.push_back(tendril::spawn("g" + std::to_string(g), [&, g] {
            ev.wait();
            log.push_back("g" + std::to_string(g) + " woke");
            if (g == 1) {
              hub.fail_run(std::make_exception_ptr(std::runtime_error("g1 has seen enough")));
            }
            tendril::sleep(0s);  // parks: the notification goes on to the next waiter
            log.push_back("g" + std::to_string(g) + " after");
          }));
        }
        tendril::sleep(0s);  // the waiters block
        ev.set();
        tendril::sleep(0s);
        log.push_back("main after");
        tendril::joinall(gs);
      });
      log.push_back("run() returned");
    } catch (const std::runtime_error& e) {
      log.push_back(std::string("run() threw: ") + e.what());
    }
    return log;
  };
  SimHub direct;
  const std::vector<std::string> log = program(direct);
  // g1 fails the run from inside the notification that woke it; the notification still wakes g2
  // (on the hub's stack), and only then does the run end: in teardown each greenlet's queued
  // sleep(0) wakeup is stale, each dies of the kill at its sleep(0), and run() throws. main's
  // sleep(0) starts the notification itself (the one direct step); g0 carries it on to g1, and
  // g1, with the run failed, parks to the hub.
  EXPECT_EQ(log, (std::vector<std::string>{"g0 woke", "g1 woke", "g2 woke",
                                           "run() threw: g1 has seen enough"}));
  EXPECT_EQ(direct.direct_steps(), 1u);
  EXPECT_EQ(direct.live_greenlets(), 0u);
  expect_the_same_observed(program, log, direct);
}
