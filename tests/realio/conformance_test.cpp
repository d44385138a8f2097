// SPDX-License-Identifier: Apache-2.0
// The hub conformance suite: the same greenlet code, unchanged, on SimHub (virtual time) and on
// LibevHub (libev, real time), with the same observable order. Real-time bounds are generous.
#include <gtest/gtest.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "seeds.hpp"
#include "tendril/net.hpp"
#include "tendril/realio.hpp"
#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

using namespace std::chrono_literals;
using Log = std::vector<std::string>;

namespace {

struct SimFactory {
  static std::unique_ptr<tendril::Hub> make() { return std::make_unique<tendril::SimHub>(); }
  static constexpr bool real_time = false;
};
struct LibevFactory {
  static std::unique_ptr<tendril::Hub> make() { return std::make_unique<tendril::LibevHub>(); }
  static constexpr bool real_time = true;
};

template <class F>
class Conformance : public ::testing::Test {};
using Hubs = ::testing::Types<SimFactory, LibevFactory>;
TYPED_TEST_SUITE(Conformance, Hubs);

}  // namespace

// foo/bar: sleep(0) hands control back and forth in gevent's order on both hubs.
TYPED_TEST(Conformance, FooBarOrder) {
  auto hub = TypeParam::make();
  Log log;
  tendril::run(*hub, [&] {
    auto foo = tendril::spawn([&] {
      log.push_back("foo 1");
      tendril::sleep(0s);
      log.push_back("foo 2");
    });
    auto bar = tendril::spawn([&] {
      log.push_back("bar 1");
      tendril::sleep(0s);
      log.push_back("bar 2");
    });
    tendril::joinall({foo, bar});
  });
  EXPECT_EQ(log, (Log{"foo 1", "bar 1", "foo 2", "bar 2"}));
}

// The flow tracer records the same switches on both hubs; time is virtual (all 0 here) on
// SimHub and monotonic on LibevHub.
TYPED_TEST(Conformance, TracerRecordsTheSameSwitchesOnBothHubs) {
  auto hub = TypeParam::make();
  tendril::trace::Tracer tracer(*hub, "foo_bar");
  tendril::run(*hub, [&] {
    auto foo = tendril::spawn("foo", [] { tendril::sleep(0s); });
    auto bar = tendril::spawn("bar", [] { tendril::sleep(0s); });
    tendril::joinall({foo, bar});
  });
  const tendril::trace::Trace t = tracer.trace();
  EXPECT_EQ(t.hub, TypeParam::real_time ? "LibevHub" : "SimHub");
  std::vector<std::string> switches;
  std::int64_t last = t.events.front().time_ns;
  for (const auto& e : t.events) {
    EXPECT_GE(e.time_ns, last);
    last = e.time_ns;
    if (e.kind != tendril::trace::EventKind::switch_) continue;
    switches.push_back(t.greenlet_name(e.greenlet) + ">" + t.greenlet_name(e.other) + " " +
                       e.reason);
  }
  EXPECT_EQ(switches, (Log{"hub>main start", "main>hub join", "hub>foo start", "foo>hub sleep(0)",
                           "hub>bar start", "bar>hub sleep(0)", "hub>foo resume", "foo>hub exit",
                           "hub>bar resume", "bar>hub exit", "hub>main resume", "main>hub exit"}));
  if (!TypeParam::real_time) {
    EXPECT_EQ(last, 0);
  }
}

// Sleepers wake in deadline order; the real hub takes real time, the simulated one none.
TYPED_TEST(Conformance, SleepersWakeInDeadlineOrder) {
  auto hub = TypeParam::make();
  Log log;
  const auto wall_start = std::chrono::steady_clock::now();
  tendril::run(*hub, [&] {
    auto f = [&](const char* name, tendril::Duration d) {
      return tendril::spawn([&log, name, d] {
        tendril::sleep(d);
        log.push_back(name);
      });
    };
    tendril::joinall({f("func1", 60ms), f("func2", 20ms), f("func3", 40ms)});
  });
  const auto wall = std::chrono::steady_clock::now() - wall_start;
  EXPECT_EQ(log, (Log{"func2", "func3", "func1"}));
  EXPECT_GE(hub->now_ns(), 60'000'000);
  if (TypeParam::real_time) {
    EXPECT_GE(wall, 55ms);
    EXPECT_LT(wall, 5s);
  } else {
    EXPECT_EQ(hub->now_ns(), 60'000'000);
  }
}

// spawn_later(0) is a timer, so a plain spawn made after it runs first.
TYPED_TEST(Conformance, SpawnLaterZeroRunsAfterPlainSpawn) {
  auto hub = TypeParam::make();
  Log log;
  tendril::run(*hub, [&] {
    auto late = tendril::spawn_later(0s, [&] { log.push_back("later(0)"); });
    auto now = tendril::spawn([&] { log.push_back("spawn"); });
    tendril::joinall({late, now});
  });
  EXPECT_EQ(log, (Log{"spawn", "later(0)"}));
}

// A timeout interrupts a blocked call; a sleep ending in the same turn as a timeout wins.
TYPED_TEST(Conformance, TimeoutsInterruptBlockedCalls) {
  auto hub = TypeParam::make();
  Log log;
  tendril::run(*hub, [&] {
    try {
      tendril::TimeoutScope t(10ms);
      tendril::Event().wait();
    } catch (const tendril::Timeout&) {
      log.push_back("timed out");
    }
    {
      tendril::TimeoutScope t(0s);
      tendril::sleep(0s);
      log.push_back("sleep(0) not interrupted");
    }
  });
  EXPECT_EQ(log, (Log{"timed out", "sleep(0) not interrupted"}));
}

// Queues, events and pools run unchanged on both hubs.
TYPED_TEST(Conformance, PrimitivesRunUnchanged) {
  auto hub = TypeParam::make();
  std::vector<int> got;
  tendril::run(*hub, [&] {
    tendril::Queue<int> q;
    tendril::Event done;
    auto consumer = tendril::spawn([&] {
      for (int i = 0; i < 3; ++i) got.push_back(q.get());
      done.set();
    });
    for (int i = 0; i < 3; ++i) q.put(i);
    EXPECT_TRUE(done.wait(2s));
    tendril::Pool pool(2);
    std::vector<int> ordered;
    for (int v : pool.imap(
             [](int ms) {
               tendril::sleep(std::chrono::milliseconds(ms));
               return ms;
             },
             std::vector<int>{30, 10, 20})) {
      ordered.push_back(v);
    }
    EXPECT_EQ(ordered, (std::vector<int>{30, 10, 20}));
    consumer->join();
  });
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
}

// Main blocked with nothing pending: a Deadlock naming it, on both hubs.
TYPED_TEST(Conformance, DeadlockIsReported) {
  auto hub = TypeParam::make();
  try {
    tendril::run(*hub, [] { tendril::Event("never set").wait(); });
    ADD_FAILURE() << "no Deadlock";
  } catch (const tendril::Deadlock& e) {
    EXPECT_NE(std::string(e.what()).find("#1 'main' blocked in Event.wait on Event#1 'never set'"),
              std::string::npos)
        << e.what();
  }
}

namespace {

// Alive is a local of main's frame; Witness, a local of another greenlet's, says on unwinding
// whether that frame was still alive.
struct Alive {
  Log* log;
  bool alive = true;
  ~Alive() {
    alive = false;
    log->push_back("main's locals die");
  }
};
struct Witness {
  Log* log;
  const Alive* main_local;
  const char* who;
  ~Witness() {
    log->push_back(std::string(who) + (main_local->alive ? " unwinds, main alive" : " too late"));
  }
};

[[noreturn, gnu::noinline]] void overdraft(int balance) {
  throw std::runtime_error("overdraft: balance is " + std::to_string(balance));
}

}  // namespace

// An exception that leaves main (no handler inside it) kills the other greenlets first, while
// main's locals still exist (the Lock one of them holds, the one the other waits for), then
// unwinds main; run() rethrows it unchanged.
TYPED_TEST(Conformance, MainsExceptionKillsTheOthersBeforeItsLocalsDie) {
  auto hub = TypeParam::make();
  Log log;
  std::string what;
  try {
    tendril::run(*hub, [&] {
      Alive main_local{&log};
      tendril::Lock lock("account");
      auto holder = tendril::spawn("holder", [&] {
        std::lock_guard<tendril::Lock> guard(lock);  // released while unwinding: lock must live
        Witness w{&log, &main_local, "holder"};
        tendril::Event().wait();
      });
      auto waiter = tendril::spawn("waiter", [&] {
        Witness w{&log, &main_local, "waiter"};
        std::lock_guard<tendril::Lock> guard(lock);
      });
      tendril::sleep(0s);
      overdraft(-60);
    });
    ADD_FAILURE() << "run() returned";
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  EXPECT_EQ(what, "overdraft: balance is -60");
  EXPECT_EQ(log,
            (Log{"holder unwinds, main alive", "waiter unwinds, main alive", "main's locals die"}));
  EXPECT_EQ(hub->live_greenlets(), 0u);
}

namespace {

// How a run ends, for LeftoversWokenBeforeTheEndDieAtTheirWait.
enum class End { main_returns, main_throws, fail_run };

// A run in which, at its end, both leftovers have a wakeup queued: the spinner its sleep(0)'s,
// the waiter the Event's notification. Each logs what it sees, GreenletExit included.
Log run_ending_with_wakeups_queued(tendril::Hub& hub, End end) {
  Log log;
  try {
    tendril::run(hub, [&] {
      tendril::Event ev("ev");
      auto spinner = tendril::spawn("spinner", [&] {
        try {
          for (int i = 0;; ++i) {
            log.push_back("spinner " + std::to_string(i));
            tendril::sleep(0s);
          }
        } catch (const tendril::GreenletExit&) {
          log.push_back("spinner: GreenletExit");
          throw;
        }
      });
      auto waiter = tendril::spawn("waiter", [&] {
        try {
          ev.wait();
          log.push_back("waiter woke");
        } catch (const tendril::GreenletExit&) {
          log.push_back("waiter: GreenletExit");
          throw;
        }
      });
      tendril::sleep(0s);  // both start: the spinner yields, the waiter blocks
      ev.set();
      switch (end) {
        case End::main_returns:
          return;
        case End::main_throws:
          throw std::runtime_error("main gives up");
        case End::fail_run:
          hub.fail_run(std::make_exception_ptr(std::runtime_error("the run failed")));
          tendril::sleep(0s);  // the run ends when main parks
          log.push_back("main went on");
      }
    });
    log.push_back("run() returned");
  } catch (const std::runtime_error& e) {
    log.push_back(std::string("run() threw: ") + e.what());
  }
  EXPECT_EQ(hub.live_greenlets(), 0u);
  return log;
}

}  // namespace

// However a run ends (main returns, main throws, the hub fails the run), a leftover whose wakeup
// was already queued does not go on as if the run had not ended: the wait it is in ends with the
// run, and GreenletExit at that wait is the next thing it sees. (gevent's program would simply
// end there; tendril kills the leftovers so that their destructors and links run.)
TYPED_TEST(Conformance, LeftoversWokenBeforeTheEndDieAtTheirWait) {
  auto hub = TypeParam::make();
  EXPECT_EQ(run_ending_with_wakeups_queued(*hub, End::main_returns),
            (Log{"spinner 0", "spinner: GreenletExit", "waiter: GreenletExit", "run() returned"}));
  EXPECT_EQ(run_ending_with_wakeups_queued(*hub, End::main_throws),
            (Log{"spinner 0", "spinner: GreenletExit", "waiter: GreenletExit",
                 "run() threw: main gives up"}));
  EXPECT_EQ(run_ending_with_wakeups_queued(*hub, End::fail_run),
            (Log{"spinner 0", "spinner: GreenletExit", "waiter: GreenletExit",
                 "run() threw: the run failed"}));
}

// An exception main catches itself kills nobody.
TYPED_TEST(Conformance, MainsCaughtExceptionKillsNobody) {
  auto hub = TypeParam::make();
  Log log;
  tendril::run(*hub, [&] {
    tendril::Event go("go");
    auto worker = tendril::spawn("worker", [&] {
      go.wait();
      log.push_back("worker woke");
    });
    tendril::sleep(0s);
    try {
      overdraft(-1);
    } catch (const std::runtime_error& e) {
      log.push_back(std::string("main caught ") + e.what());
    }
    log.push_back(worker->dead() ? "worker dead" : "worker alive");
    go.set();
    worker->join();
  });
  EXPECT_EQ(log, (Log{"main caught overdraft: balance is -1", "worker alive", "worker woke"}));
}

// The seed's gethostbyname example: three lookups as blocking calls, joinall(timeout=2), with
// names that resolve on a machine without network.
TYPED_TEST(Conformance, BlockingCallsResolveNames) {
  auto hub = TypeParam::make();
  std::vector<std::string> resolved(3);
  tendril::run(*hub, [&] {
    const char* names[] = {"localhost", "127.0.0.1", "::1"};
    std::vector<tendril::Ref<tendril::Greenlet>> jobs;
    for (int i = 0; i < 3; ++i) {
      jobs.push_back(tendril::spawn([&, i] {
        resolved[static_cast<std::size_t>(i)] = tendril::blocking_call([&] {
          addrinfo hints{};
          hints.ai_flags = AI_NUMERICSERV;
          addrinfo* res = nullptr;
          if (::getaddrinfo(names[i], "80", &hints, &res) != 0 || res == nullptr) {
            throw std::runtime_error(std::string("cannot resolve ") + names[i]);
          }
          char host[NI_MAXHOST];
          ::getnameinfo(res->ai_addr, res->ai_addrlen, host, sizeof host, nullptr, 0,
                        NI_NUMERICHOST);
          ::freeaddrinfo(res);
          return std::string(host);
        });
      }));
    }
    EXPECT_EQ(tendril::joinall(jobs, 2s).size(), jobs.size());
  });
  EXPECT_TRUE(resolved[0] == "127.0.0.1" || resolved[0] == "::1") << resolved[0];
  EXPECT_EQ(resolved[1], "127.0.0.1");
  EXPECT_EQ(resolved[2], "::1");
}

// A blocking call's exception comes out of blocking_call() in the calling greenlet.
TYPED_TEST(Conformance, BlockingCallRethrows) {
  auto hub = TypeParam::make();
  tendril::run(*hub, [&] {
    EXPECT_THROW(tendril::blocking_call([]() -> int { throw std::out_of_range("no"); }),
                 std::out_of_range);
  });
}

// On the real hub, other greenlets go on while a blocking call runs on the thread pool.
TEST(LibevHub, BlockingCallDoesNotStallOtherGreenlets) {
  tendril::LibevHub hub;
  int ticks = 0;
  tendril::run(hub, [&] {
    auto ticker = tendril::spawn([&] {
      for (int i = 0; i < 5; ++i) {
        tendril::sleep(5ms);
        ++ticks;
      }
    });
    tendril::blocking_call([] { std::this_thread::sleep_for(300ms); });
    EXPECT_EQ(ticks, 5);
    ticker->join();
  });
}

namespace {
// busy() computes for d without yielding (the hub cannot run meanwhile).
void busy(std::chrono::nanoseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}
}  // namespace

// The clock is refreshed before a deadline is computed (gevent's update=True): a sleep(100ms)
// after 80 ms of work without yielding still sleeps 100 ms (it used to return after about 20 ms,
// counted from the loop iteration's cached time).
TEST(LibevHub, SleepAfterBusyWorkCountsFromNow) {
  tendril::LibevHub hub;
  std::chrono::nanoseconds slept{};
  tendril::run(hub, [&] {
    tendril::sleep(0s);  // a fresh loop iteration: its cached time is now
    busy(80ms);
    const auto from = std::chrono::steady_clock::now();
    tendril::sleep(100ms);
    slept = std::chrono::steady_clock::now() - from;
  });
  EXPECT_GE(slept, 100ms);
  EXPECT_LT(slept, 1s);
}

// Eight sleep(40ms) started in one pass wake in the order they were started (libev's timer heap
// gave 7, 6, ..., when their deadlines came out equal), as in gevent (tests/gevent_twins).
TEST(LibevHub, EqualSleepsWakeInArmingOrder) {
  tendril::LibevHub hub;
  std::vector<int> woke;
  tendril::run(hub, [&] {
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    for (int i = 1; i <= 8; ++i) {
      gs.push_back(tendril::spawn([&woke, i] {
        tendril::sleep(40ms);
        woke.push_back(i);
      }));
    }
    tendril::joinall(gs);
  });
  EXPECT_EQ(woke, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8}));
}

// Equal deadlines fire in arming order even when the clock reads the same for all of them:
// start_timer() with one absolute deadline, eight times.
TEST(LibevHub, EqualDeadlinesFireInArmingOrder) {
  tendril::LibevHub hub;
  std::vector<int> fired;
  tendril::run(hub, [&] {
    const std::int64_t deadline = hub.now_ns() + 20'000'000;
    for (int i = 1; i <= 8; ++i) {
      hub.start_timer(deadline,
                      tendril::Callback::from_function([&fired, i] { fired.push_back(i); }));
    }
    tendril::sleep(50ms);
  });
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8}));
}

// A Timeout that expires during work that does not yield fires at the first wait after it: a
// sleep armed then counts from now, so it does not come due in the same turn and win (it did,
// and the Timeout never fired). gevent raises the Timeout (tests/gevent_twins).
TEST(LibevHub, OverdueTimeoutFiresAtTheNextWait) {
  tendril::LibevHub hub;
  std::string outcome;
  tendril::run(hub, [&] {
    try {
      tendril::TimeoutScope t(50ms);
      busy(80ms);
      tendril::sleep(10ms);
      outcome = "slept";
    } catch (const tendril::Timeout&) {
      outcome = "timeout";
    }
  });
  EXPECT_EQ(outcome, "timeout");
}

// post_threadsafe() from another thread wakes the hub and runs on its thread; SimHub refuses it.
TEST(LibevHub, PostFromAnotherThread) {
  tendril::LibevHub hub;
  std::thread::id ran_on;
  tendril::run(hub, [&] {
    tendril::Event posted;
    tendril::TimeoutScope guard(5s);  // the loop must stay alive while waiting: a timer does
    std::thread other([&] {
      hub.post_threadsafe([&] {
        ran_on = std::this_thread::get_id();
        posted.set();
      });
    });
    posted.wait();
    other.join();
  });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  tendril::SimHub sim;
  EXPECT_THROW(sim.post_threadsafe([] {}), tendril::UsageError);
}

// Waiting for another thread's post with nothing else pending is a Deadlock, unless a
// KeepAlive says a post will come; then the loop waits for it. Dropped on the other thread, the
// KeepAlive lets the run end as usual.
TEST(LibevHub, KeepAliveWaitsForAPostInsteadOfDeadlocking) {
  tendril::LibevHub hub;
  EXPECT_THROW(tendril::run(hub,
                            [&] {
                              tendril::Event never;
                              never.wait();
                            }),
               tendril::Deadlock);
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    tendril::Event posted;
    auto keep = std::make_unique<tendril::LibevHub::KeepAlive>(hub.keep_alive());
    std::thread other([&, keep = std::move(keep)]() mutable {
      std::this_thread::sleep_for(20ms);
      hub.post_threadsafe([&] {
        log.push_back("posted");
        posted.set();
      });
      keep.reset();  // dropped on this thread
    });
    posted.wait();  // with nothing else pending: no Deadlock, the loop waits for the post
    log.push_back("woken");
    other.join();
    tendril::Event never;
    EXPECT_THROW(never.wait(), tendril::Deadlock);  // the promise is gone: a real deadlock again
    log.push_back("deadlock seen");
  });
  EXPECT_EQ(log, (std::vector<std::string>{"posted", "woken", "deadlock seen"}));
}

// Posts that arrive after the last run() are reported when the hub is destroyed, not dropped
// silently.
TEST(LibevHub, PostsNeverRunAreReported) {
  auto hub = std::make_unique<tendril::LibevHub>();
  tendril::run(*hub, [] {});
  std::thread([&] {
    hub->post_threadsafe([] {});
    hub->post_threadsafe([] {});
  }).join();
  EXPECT_EQ(hub->posts_pending(), 2u);
  ::testing::internal::CaptureStderr();
  hub.reset();
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "tendril: LibevHub destroyed with 2 posts from other threads never run (posted after "
            "its last run() ended)\n");
}

// The seed's signal example: a handler kills the forever-running greenlet, which unwinds, and
// the program ends cleanly, well before the 1000 s sleep.
TEST(LibevHub, SignalHandlerKillsAndShutsDownCleanly) {
  tendril::LibevHub hub;
  bool unwound = false;
  const auto start = std::chrono::steady_clock::now();
  tendril::run(hub, [&] {
    tendril::Ref<tendril::Greenlet> forever;
    hub.signal_handler(SIGUSR1, [&] { forever->kill(nullptr, false); });
    forever = tendril::spawn([&] {
      struct Guard {
        bool* flag;
        ~Guard() { *flag = true; }
      } guard{&unwound};
      tendril::sleep(1000s);
    });
    tendril::spawn([] {
      tendril::sleep(10ms);
      ::raise(SIGUSR1);
    });
    forever->join();
    EXPECT_TRUE(forever->killed());
  });
  EXPECT_TRUE(unwound);
  EXPECT_EQ(hub.live_greenlets(), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_THROW(hub.signal_handler(0, [] {}), tendril::UsageError);
}

// The seed's echo server, unchanged on both hubs: 100 concurrent clients each send numbered
// messages and check every byte that comes back (on SimHub: the simulated network).
TYPED_TEST(Conformance, EchoServerWith100Clients) {
  auto hub = TypeParam::make();
  int clients_ok = 0;
  tendril::run(*hub, [&] {
    tendril::StreamServer server(tendril::listen({"127.0.0.1", 0}), [](tendril::Stream& s) {
      for (;;) {
        std::string data = s.recv(4096);
        if (data.empty()) return;
        s.sendall(data);
      }
    });
    server.start();
    std::vector<tendril::Ref<tendril::Greenlet>> clients;
    for (int c = 0; c < 100; ++c) {
      clients.push_back(tendril::spawn([&, c] {
        tendril::Stream s = tendril::connect(server.address(), 5s);
        std::string expected;
        for (int m = 0; m < 10; ++m) {
          const std::string msg =
              "client " + std::to_string(c) + " message " + std::to_string(m) + "\n";
          s.sendall(msg, 5s);
          expected += msg;
        }
        s.shutdown();
        std::string got;
        for (;;) {
          std::string part = s.recv(4096, 5s);
          if (part.empty()) break;
          got += part;
        }
        EXPECT_EQ(got, expected);
        if (got == expected) ++clients_ok;
      }));
    }
    EXPECT_EQ(tendril::joinall(clients, 20s).size(), clients.size());
    server.stop(1s);
  });
  EXPECT_EQ(clients_ok, 100);
}

// select() over streams, unchanged on both hubs: readiness in index order, a wait woken by the
// first arrival, a timeout that returns nothing, writability, EOF, and a closed stream refused.
TYPED_TEST(Conformance, SelectOverStreams) {
  auto hub = TypeParam::make();
  using Indexes = std::vector<std::size_t>;
  tendril::run(*hub, [&] {
    tendril::Listener l = tendril::listen({"127.0.0.1", 0});
    std::vector<tendril::Stream> clients, servers;
    for (int i = 0; i < 3; ++i) {
      clients.push_back(tendril::connect(l.address(), 5s));
      servers.push_back(l.accept(5s));
    }
    std::vector<tendril::Stream*> all = {&clients[0], &clients[1], &clients[2]};
    EXPECT_TRUE(tendril::select(all, {}, 0s).empty());
    servers[2].sendall("x");
    servers[0].sendall("y");
    tendril::sleep(10ms);
    tendril::net::Selected ready = tendril::select(all, {}, 5s);
    EXPECT_EQ(ready.readable, (Indexes{0, 2}));
    EXPECT_EQ(ready.writable, Indexes{});
    EXPECT_EQ(clients[0].recv(10), "y");
    EXPECT_EQ(clients[2].recv(10), "x");
    // A blocking select wakes at the first arrival.
    auto writer = tendril::spawn([&] {
      tendril::sleep(20ms);
      servers[1].sendall("z");
    });
    const auto before = tendril::now();
    ready = tendril::select(all, {&clients[2]}, 5s);
    EXPECT_EQ(ready.readable, Indexes{});
    EXPECT_EQ(ready.writable, (Indexes{0}));  // a stream with room is writable at once
    ready = tendril::select(all, {}, 5s);
    EXPECT_EQ(ready.readable, (Indexes{1}));
    EXPECT_GE(tendril::now() - before, 20ms);
    EXPECT_EQ(clients[1].recv(10), "z");
    writer->join();
    // Nothing arrives: a timeout returns empty lists, after the timeout.
    const auto t0 = tendril::now();
    EXPECT_TRUE(tendril::select(all, {}, 30ms).empty());
    EXPECT_GE(tendril::now() - t0, 29ms);
    // EOF is readable.
    servers[1].close();
    ready = tendril::select(all, {}, 5s);
    EXPECT_EQ(ready.readable, (Indexes{1}));
    EXPECT_EQ(clients[1].recv(10), "");
    clients[0].close();
    EXPECT_THROW(tendril::select(all, {}, 0s), tendril::UsageError);
    EXPECT_THROW(tendril::select({nullptr}, {}, 0s), tendril::UsageError);
    EXPECT_THROW(tendril::select({}, {}, -1s), tendril::UsageError);
  });
}

// compute_for(d) is work that does not yield: nothing else runs meanwhile, and a Timeout that
// expires during it fires at the next wait (gevent: tests/gevent_twins t_clock2). SimHub
// advances its virtual clock by exactly d; LibevHub blocks for d.
TYPED_TEST(Conformance, ComputeForDoesNotYieldAndTimeoutsFireAtTheNextWait) {
  auto hub = TypeParam::make();
  Log log;
  tendril::run(*hub, [&] {
    auto other = tendril::spawn([&] { log.push_back("other ran"); });
    const auto t0 = tendril::now();
    try {
      tendril::TimeoutScope t(50ms);
      tendril::compute_for(80ms);
      log.push_back("computed");
      tendril::sleep(10ms);
      log.push_back("slept");
    } catch (const tendril::Timeout&) {
      log.push_back("timeout");
    }
    EXPECT_GE(tendril::now() - t0, 80ms);
    other->join();
  });
  EXPECT_EQ(log, (Log{"computed", "other ran", "timeout"}));
}

// A select that finds a stream ready still yields once before it returns (gevent's select
// sleeps 0 then), so a loop over ready streams cannot starve the others; a zero timeout too.
TYPED_TEST(Conformance, SelectYieldsOnceEvenWhenReady) {
  auto hub = TypeParam::make();
  Log log;
  tendril::run(*hub, [&] {
    tendril::Listener l = tendril::listen({"127.0.0.1", 0});
    tendril::Stream client = tendril::connect(l.address(), 5s);
    tendril::Stream server = l.accept(5s);
    server.sendall("x");
    tendril::sleep(10ms);
    auto other = tendril::spawn([&] { log.push_back("other ran"); });
    const tendril::net::Selected ready = tendril::select({&client}, {}, 5s);
    log.push_back("select returned " + std::to_string(ready.readable.size()));
    auto again = tendril::spawn([&] { log.push_back("other ran again"); });
    const tendril::net::Selected none = tendril::select({}, {}, 0s);
    log.push_back("select(0) returned " + std::to_string(none.readable.size()));
    tendril::joinall({other, again});
  });
  EXPECT_EQ(log,
            (Log{"other ran", "select returned 1", "other ran again", "select(0) returned 0"}));
}

namespace {

// errno_of() runs f and returns the errno of the std::system_error it throws (0: none).
template <class F>
int errno_of(F&& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

// get_hello() makes one request to the hello server and returns the status line.
std::string get_hello(const tendril::Address& at) {
  tendril::Stream s = tendril::connect(at, 5s);
  s.sendall("GET / HTTP/1.0\r\n\r\n", 5s);
  std::string response;
  for (std::string part; !(part = s.recv(4096, 5s)).empty();) response += part;
  return response.substr(0, response.find("\r\n"));
}

}  // namespace

// A peer that closes with unread bytes resets the connection: recv gets ECONNRESET, then send
// fails too (Linux: EPIPE once the reset was reported; the simulated network: ECONNRESET).
TYPED_TEST(Conformance, RecvOnAResetConnection) {
  auto hub = TypeParam::make();
  tendril::run(*hub, [&] {
    tendril::Listener l = tendril::listen({"127.0.0.1", 0});
    tendril::Stream c = tendril::connect(l.address(), 5s);
    tendril::Stream s = l.accept(5s);
    c.sendall("never read");
    tendril::sleep(10ms);
    s.close();
    EXPECT_EQ(errno_of([&] { c.recv(100, 5s); }), ECONNRESET);
    const int err = errno_of([&] { c.sendall("more", 5s); });
    EXPECT_TRUE(err == ECONNRESET || err == EPIPE) << err;
  });
}

// Sending to a peer that closed: the first send goes (the peer answers with a reset), the next
// fails with ECONNRESET or EPIPE, never SIGPIPE; sending on a closed Stream is a UsageError.
TYPED_TEST(Conformance, SendAfterClose) {
  auto hub = TypeParam::make();
  tendril::run(*hub, [&] {
    tendril::Listener l = tendril::listen({"127.0.0.1", 0});
    tendril::Stream c = tendril::connect(l.address(), 5s);
    l.accept(5s).close();
    tendril::sleep(10ms);
    EXPECT_EQ(c.send("x", 5s), 1u);
    tendril::sleep(10ms);
    const int err = errno_of([&] { c.sendall("y", 5s); });
    EXPECT_TRUE(err == ECONNRESET || err == EPIPE) << err;
    c.close();
    try {
      c.send("z");
      ADD_FAILURE() << "sent on a closed stream";
    } catch (const tendril::UsageError& e) {
      EXPECT_EQ(std::string(e.what()), "tendril::Stream::send: the stream is closed");
    }
  });
}

// A handler that throws is reported to the hub's error handler and the server keeps serving; so
// does a client that disconnects mid-request or before the answer.
TYPED_TEST(Conformance, ServerSurvivesThrowingHandlersAndVanishingClients) {
  auto hub = TypeParam::make();
  std::vector<std::string> reported;
  hub->set_error_handler([&](tendril::Greenlet&, std::exception_ptr e) {
    reported.push_back(tendril::describe_exception(e));
  });
  tendril::run(*hub, [&] {
    int calls = 0;
    tendril::StreamServer server(tendril::listen({"127.0.0.1", 0}), [&](tendril::Stream& s) {
      if (++calls == 1) throw std::runtime_error("handler bug on the first request");
      seeds::hello_http_handler(s);
    });
    server.start();
    // The throwing handler's stream closes with the request unread: the client sees a reset.
    EXPECT_EQ(errno_of([&] { get_hello(server.address()); }), ECONNRESET);
    EXPECT_EQ(get_hello(server.address()), "HTTP/1.0 200 OK");
    {
      tendril::Stream half = tendril::connect(server.address(), 5s);
      half.sendall("GET / HT", 5s);  // and gone mid-request
    }
    {
      tendril::Stream impatient = tendril::connect(server.address(), 5s);
      impatient.sendall("GET / HTTP/1.0\r\n\r\n", 5s);  // gone before the answer
    }
    tendril::sleep(200ms);  // both handlers finish (the second answers a closed peer)
    EXPECT_EQ(get_hello(server.address()), "HTTP/1.0 200 OK");
    EXPECT_EQ(server.handled(), 5u);
    server.stop(1s);
  });
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_NE(reported[0].find("handler bug on the first request"), std::string::npos) << reported[0];
}

// A signal arriving while the hub thread waits in libev (a greenlet blocked in recv): the signal
// handler runs, the blocked recv is not disturbed (EINTR is handled) and gets its bytes; a
// handler that kills a blocked greenlet unwinds it cleanly while the server keeps serving.
TEST(LibevHub, SignalDuringABlockingCall) {
  tendril::LibevHub hub;
  int signals = 0;
  const pthread_t hub_thread = ::pthread_self();
  tendril::run(hub, [&] {
    tendril::Ref<tendril::Greenlet> victim;
    hub.signal_handler(SIGUSR2, [&] {
      if (++signals == 2) victim->kill(nullptr, false);
    });
    tendril::StreamServer server(tendril::listen({"127.0.0.1", 0}), seeds::hello_http_handler);
    server.start();
    tendril::Stream c = tendril::connect(server.address(), 5s);
    // The signals come from another thread while the hub sleeps in epoll.
    std::thread sender([hub_thread] {
      std::this_thread::sleep_for(30ms);
      ::pthread_kill(hub_thread, SIGUSR2);
      std::this_thread::sleep_for(30ms);
      ::pthread_kill(hub_thread, SIGUSR2);
    });
    victim = tendril::spawn([&] { tendril::connect(server.address(), 5s).recv(10); });
    c.sendall("GET / HTTP/1.0\r\n\r\n", 5s);
    std::string response;
    for (std::string part; !(part = c.recv(4096, 5s)).empty();) response += part;
    EXPECT_EQ(response.substr(0, response.find("\r\n")), "HTTP/1.0 200 OK");
    EXPECT_TRUE(victim->join(5s));
    EXPECT_TRUE(victim->killed());
    EXPECT_EQ(signals, 2);
    sender.join();
    EXPECT_EQ(get_hello(server.address()), "HTTP/1.0 200 OK");
    server.stop(1s);
  });
  EXPECT_EQ(hub.live_greenlets(), 0u);
}
