// SPDX-License-Identifier: Apache-2.0
// The simulated network's faults (refusals, resets, partitions) at exact virtual times, and the
// echo server under faults: clients that reconnect and resend lose and duplicate no byte.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>
#include <vector>

#include "tendril/net.hpp"
#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

using namespace std::chrono_literals;
using Log = std::vector<std::string>;

namespace {

// A hub whose every delivery takes exactly 50 us, so that times are exact without choices.
tendril::SimOptions fixed_latency() {
  tendril::SimOptions o;
  o.net.min_latency_us = 50;
  o.net.max_latency_us = 50;
  return o;
}

std::int64_t now_us() { return tendril::now().count() / 1000; }

// errno_of() runs f and returns the errno of the std::system_error it throws (0: none).
template <class F>
int errno_of(F&& f, std::string* what = nullptr) {
  try {
    f();
  } catch (const std::system_error& e) {
    if (what != nullptr) *what = e.what();
    return e.code().value();
  }
  return 0;
}

const tendril::Address server_at{"10.0.0.1", 80};
const tendril::Address anyone{};

}  // namespace

// Bytes due during a partition arrive when it heals plus their latency, in order, EOF last; a
// connect during it waits for the heal, or times out.
TEST(SimNet, PartitionDelaysBytesUntilItHeals) {
  tendril::SimHub hub(fixed_latency());
  Log log;
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen(server_at);
    hub.sim_net().partition(server_at, anyone, 1ms, 10ms);  // [1 ms, 11 ms)
    auto server = tendril::spawn([&] {
      tendril::Stream s = l.accept();
      for (;;) {
        std::string got = s.recv(100);
        log.push_back(std::to_string(now_us()) + ":" + (got.empty() ? "EOF" : got));
        if (got.empty()) return;
      }
    });
    tendril::Stream c = tendril::connect(server_at);
    c.sendall("a");         // at 0: arrives at 50 us
    tendril::sleep(980us);  // at 980 us: due at 1030 us, inside the partition
    c.sendall("b");
    tendril::sleep(1020us);  // at 2 ms
    c.sendall("c");
    c.shutdown();
    // A connect during the partition waits until it heals at 11 ms...
    auto waiter = tendril::spawn([&] {
      tendril::Stream late = tendril::connect(server_at);
      log.push_back(std::to_string(now_us()) + ":connected");
    });
    // ...or times out.
    tendril::sleep(1ms);  // at 3 ms
    EXPECT_THROW(tendril::connect(server_at, 2ms), tendril::Timeout);
    log.push_back(std::to_string(now_us()) + ":connect timed out");
    tendril::joinall({server, waiter});
    l.accept();  // the waiter's connection
    // After the heal, bytes take their latency only.
    tendril::Stream again = tendril::connect(server_at);
    tendril::Stream s2 = l.accept();
    again.sendall("d");
    std::string d = s2.recv(10);  // before now_us(): the operands of + have no order (clang's
                                  // left-to-right read the clock before recv waited)
    log.push_back(std::to_string(now_us()) + ":" + d);
  });
  EXPECT_EQ(log, (Log{"50:a", "5000:connect timed out", "11000:connected", "11050:bc", "11050:EOF",
                      "11100:d"}));
}

// A connection reset after 10 bytes: the receiver reads exactly those, then both ends get
// ECONNRESET from recv and send; the next connection is not reset.
TEST(SimNet, ResetMidStreamOnBothEnds) {
  tendril::SimHub hub(fixed_latency());
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen(server_at);
    hub.sim_net().reset_after(server_at, anyone, 10);
    tendril::Stream c = tendril::connect(server_at);
    tendril::Stream s = l.accept();
    EXPECT_EQ(c.send("hello world!!"), 13u);  // the sender cannot know
    EXPECT_EQ(s.recv(100), "hello worl");
    EXPECT_EQ(now_us(), 50);
    std::string what;
    EXPECT_EQ(errno_of([&] { s.recv(100); }, &what), ECONNRESET);
    EXPECT_NE(what.find("recv from sim-client:"), std::string::npos) << what;
    EXPECT_NE(what.find("(simulated)"), std::string::npos) << what;
    EXPECT_EQ(errno_of([&] { s.sendall("x"); }), ECONNRESET);
    EXPECT_EQ(errno_of([&] { c.recv(100); }, &what), ECONNRESET);
    EXPECT_NE(what.find("recv from 10.0.0.1:80"), std::string::npos) << what;
    EXPECT_EQ(errno_of([&] { c.send("x"); }), ECONNRESET);
    EXPECT_EQ(hub.sim_net().resets(), 1u);
    // The rule was for one connection.
    tendril::Stream c2 = tendril::connect(server_at);
    tendril::Stream s2 = l.accept();
    c2.sendall("hello world!!");
    c2.shutdown();
    EXPECT_EQ(s2.recv(100), "hello world!!");
    EXPECT_EQ(s2.recv(100), "");
  });
}

// reset() cuts open connections at once: a greenlet blocked in recv wakes with ECONNRESET at that
// virtual time; bytes already arrived are still read first.
TEST(SimNet, ResetNowWakesBlockedReaders) {
  tendril::SimHub hub(fixed_latency());
  Log log;
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen(server_at);
    tendril::Stream c = tendril::connect(server_at);
    tendril::Stream s = l.accept();
    auto reader = tendril::spawn([&] {
      tendril::sleep(200us);
      log.push_back(c.recv(100));
      const int err = errno_of([&] { c.recv(100); });
      log.push_back(std::to_string(err) + " at " + std::to_string(now_us()));
    });
    s.sendall("early");
    tendril::sleep(300us);
    s.sendall("lost");  // in flight when the reset comes
    tendril::sleep(10us);
    EXPECT_EQ(hub.sim_net().reset(server_at, anyone), 1u);
    EXPECT_EQ(hub.sim_net().reset(server_at, anyone), 0u);
    reader->join();
    EXPECT_EQ(hub.sim_net().open_connections(), 0u);
  });
  EXPECT_EQ(log, (Log{"early", std::to_string(ECONNRESET) + " at 310"}));
}

// refuse() refuses the next connects even with a listener; accept_again() lifts it.
TEST(SimNet, RefusedConnects) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen(server_at);
    hub.sim_net().refuse(server_at, 2);
    std::string what;
    EXPECT_EQ(errno_of([&] { tendril::connect(server_at); }, &what), ECONNREFUSED);
    EXPECT_NE(what.find("connect to 10.0.0.1:80 refused by a fault (simulated)"), std::string::npos)
        << what;
    EXPECT_EQ(errno_of([&] { tendril::connect(server_at); }), ECONNREFUSED);
    EXPECT_EQ(errno_of([&] { tendril::connect(server_at); }), 0);
    hub.sim_net().refuse({"10.0.0.1", 0});
    EXPECT_EQ(errno_of([&] { tendril::connect(server_at); }), ECONNREFUSED);
    hub.sim_net().accept_again({"10.0.0.1", 0});
    EXPECT_EQ(errno_of([&] { tendril::connect(server_at); }), 0);
    l.close();
    EXPECT_EQ(errno_of([&] { tendril::connect(server_at); }, &what), ECONNREFUSED);
    EXPECT_NE(what.find("connect to 10.0.0.1:80 (simulated)"), std::string::npos) << what;
  });
}

// Sending to a peer that closed: the bytes reset the connection, the next send gets ECONNRESET
// (the FIN that came first still reads as EOF); send after shutdown is EPIPE; a closed Stream is
// a UsageError; closing with unread bytes resets the peer.
TEST(SimNet, SendAfterCloseAndCloseWithUnreadBytes) {
  tendril::SimHub hub(fixed_latency());
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen(server_at);
    {
      tendril::Stream c = tendril::connect(server_at);
      l.accept().close();
      tendril::sleep(100us);  // the FIN arrives
      EXPECT_EQ(c.send("x"), 1u);
      tendril::sleep(100us);  // the x arrives at the closed stream: RST
      EXPECT_EQ(errno_of([&] { c.send("y"); }), ECONNRESET);
      EXPECT_EQ(c.recv(10), "");
      c.close();
      EXPECT_THROW(c.send("z"), tendril::UsageError);
    }
    {
      tendril::Stream c = tendril::connect(server_at);
      tendril::Stream s = l.accept();
      c.shutdown();
      EXPECT_EQ(errno_of([&] { c.send("z"); }), EPIPE);
    }
    {
      tendril::Stream c = tendril::connect(server_at);
      tendril::Stream s = l.accept();
      c.sendall("unread");
      tendril::sleep(100us);
      s.close();
      EXPECT_EQ(errno_of([&] { c.recv(10); }), ECONNRESET);
    }
  });
}

// Connections still in a closed listener's backlog are reset.
TEST(SimNet, ClosingAListenerResetsItsBacklog) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen(server_at);
    tendril::Stream c = tendril::connect(server_at);
    l.close();
    EXPECT_EQ(errno_of([&] { c.recv(10); }), ECONNRESET);
  });
}

namespace {

struct FaultyEchoResult {
  int clients_ok = 0;
  std::uint64_t resets = 0;
  int reconnects = 0;
  int timeouts = 0;
  std::uint64_t schedule_hash = 0;
  std::int64_t end_ns = 0;
};

// faulty_echo() runs the echo server under drawn resets and a partition. Each client owns a
// numbered message stream; on a reset or a timeout it reconnects and resends from its first
// unacknowledged message, and it checks that every echoed line is exactly the next one expected.
FaultyEchoResult faulty_echo(std::uint64_t seed, int clients, int messages) {
  tendril::SimOptions options;
  options.net.reset_one_in = 3;
  options.net.reset_within_bytes = 200;
  tendril::SimHub hub(tendril::Random{seed}, options);
  FaultyEchoResult result;
  tendril::run(hub, [&] {
    tendril::StreamServer server(tendril::listen(server_at), [](tendril::Stream& s) {
      // Echo whole lines only: a partial line is a message cut by a reset, resent later.
      std::string pending;
      try {
        for (;;) {
          const std::string data = s.recv(4096);
          if (data.empty()) return;
          pending += data;
          const std::size_t end = pending.rfind('\n');
          if (end == std::string::npos) continue;
          s.sendall(std::string_view(pending).substr(0, end + 1));
          pending.erase(0, end + 1);
        }
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ECONNRESET) << e.what();
      }
    });
    server.start();
    hub.sim_net().partition(server_at, anyone, 2ms, 10ms);
    std::vector<tendril::Ref<tendril::Greenlet>> workers;
    for (int c = 0; c < clients; ++c) {
      workers.push_back(tendril::spawn([&, c] {
        auto message = [c](int m) {
          return "client " + std::to_string(c) + " message " + std::to_string(m) + "\n";
        };
        std::string received;  // every acknowledged echo, in order
        int acked = 0;
        for (int attempt = 0; acked < messages; ++attempt) {
          ASSERT_LT(attempt, 1000) << "client " << c << " never finishes";
          if (attempt > 0) {
            ++result.reconnects;
            tendril::sleep(1ms);
          }
          try {
            tendril::Stream s = tendril::connect(server_at, 50ms);
            std::string buffer;
            while (acked < messages) {
              s.sendall(message(acked), 5ms);
              std::size_t end;
              while ((end = buffer.find('\n')) == std::string::npos) {
                const std::string part = s.recv(4096, 5ms);
                if (part.empty()) throw std::runtime_error("EOF from the echo server");
                buffer += part;
              }
              const std::string line = buffer.substr(0, end + 1);
              buffer.erase(0, end + 1);
              ASSERT_EQ(line, message(acked)) << "client " << c << ": lost or duplicated bytes";
              received += line;
              ++acked;
            }
          } catch (const std::system_error& e) {
            ASSERT_EQ(e.code().value(), ECONNRESET) << e.what();
          } catch (const tendril::Timeout&) {
            ++result.timeouts;  // a partition held the bytes: start over on a new connection
          }
        }
        std::string expected;
        for (int m = 0; m < messages; ++m) expected += message(m);
        EXPECT_EQ(received, expected);
        if (received == expected) ++result.clients_ok;
      }));
    }
    tendril::joinall(workers);
    server.stop(1s);
  });
  result.resets = hub.sim_net().resets();
  result.schedule_hash = hub.schedule_hash();
  result.end_ns = hub.now_ns();
  return result;
}

}  // namespace

// The echo server under drawn resets and a 10 ms partition: every client gets every message back
// exactly once, for several seeds, and a seed replays identically.
TEST(SimNet, EchoUnderFaultsLosesAndDuplicatesNothing) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " (Random)");
    const FaultyEchoResult r = faulty_echo(seed, 20, 20);
    EXPECT_EQ(r.clients_ok, 20);
    EXPECT_GT(r.resets, 5u);  // the faults did happen
    EXPECT_GT(r.reconnects, 5);
    EXPECT_GT(r.timeouts, 0);         // some clients were cut off by the partition
    EXPECT_GT(r.end_ns, 12'000'000);  // past the partition
    const FaultyEchoResult again = faulty_echo(seed, 20, 20);
    EXPECT_EQ(again.schedule_hash, r.schedule_hash);
    EXPECT_EQ(again.resets, r.resets);
    EXPECT_EQ(again.end_ns, r.end_ns);
  }
}

// Drawn faults never fire under Fifo (answer 0 is "no fault").
TEST(SimNet, DrawnFaultsNeedANonDefaultAnswer) {
  tendril::SimOptions options;
  options.net.reset_one_in = 2;
  tendril::SimHub hub(options);
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen(server_at);
    for (int i = 0; i < 10; ++i) {
      tendril::Stream c = tendril::connect(server_at);
      tendril::Stream s = l.accept();
      c.sendall(std::string(5000, 'x'));
      c.shutdown();
      std::string got;
      for (std::string part; !(part = s.recv(65536)).empty();) got += part;
      EXPECT_EQ(got.size(), 5000u);
    }
  });
  EXPECT_EQ(hub.sim_net().resets(), 0u);
}

// select() on the simulated network: exact wake times for arrival, a reset (readable), and room
// freed by a slow reader (writable); with no streams it is a 2 s sleep.
TEST(SimNet, SelectWakesAtExactVirtualTimes) {
  tendril::SimOptions options = fixed_latency();
  options.net.buffer_bytes = 100;
  tendril::SimHub hub(options);
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen(server_at);
    tendril::Stream c = tendril::connect(server_at);
    tendril::Stream s = l.accept();
    tendril::Stream c2 = tendril::connect(server_at);
    tendril::Stream s2 = l.accept();
    // Fill the client's direction: 100 bytes in flight or buffered, so it is not writable.
    EXPECT_EQ(c.send(std::string(150, 'x')), 100u);
    tendril::spawn([&] {
      tendril::sleep(1ms);
      EXPECT_EQ(s.recv(30).size(), 30u);  // frees room at 1 ms
    });
    auto ready = tendril::select({&c, &c2}, {&c}, std::nullopt);
    EXPECT_EQ(ready.readable, std::vector<std::size_t>{});
    EXPECT_EQ(ready.writable, std::vector<std::size_t>{0});
    EXPECT_EQ(now_us(), 1000);
    tendril::spawn([&] {
      tendril::sleep(2ms);
      hub.sim_net().reset(s2.peer(), server_at);
    });
    ready = tendril::select({&c, &c2}, {}, 10ms);
    EXPECT_EQ(ready.readable, std::vector<std::size_t>{1});
    EXPECT_EQ(now_us(), 3000);
    EXPECT_EQ(errno_of([&] { c2.recv(1); }), ECONNRESET);
    EXPECT_EQ(tendril::select({&c2}, {}, 10ms).readable, std::vector<std::size_t>{0});  // still
    s.sendall("hi");
    ready = tendril::select({&c}, {}, 10ms);
    EXPECT_EQ(ready.readable, std::vector<std::size_t>{0});
    EXPECT_EQ(now_us(), 3050);
    tendril::select({}, {}, 2s);
    EXPECT_EQ(now_us(), 2'003'050);
  });
}

// SimHub::reset() (exploration reuses the hub) starts a fresh network: same ports, no faults.
TEST(SimNet, HubResetStartsAFreshNetwork) {
  tendril::SimHub hub;
  auto once = [&] {
    std::string peer;
    tendril::run(hub, [&] {
      tendril::Listener l = tendril::listen({"10.0.0.1", 0});
      tendril::Stream c = tendril::connect(l.address());
      peer = l.address().to_string() + " " + l.accept().peer().to_string();
      hub.sim_net().refuse(anyone);
    });
    return peer;
  };
  EXPECT_EQ(once(), "10.0.0.1:40000 sim-client:40001");
  hub.reset(std::make_unique<tendril::Fifo>());
  EXPECT_EQ(once(), "10.0.0.1:40000 sim-client:40001");
}

// Faults are traced where they take effect: a refused connect and a partition in the greenlet
// that asked, a reset by bytes where the delivery crossed its limit (on the hub's stack).
TEST(SimNet, FaultsAreTraced) {
  tendril::SimHub hub(fixed_latency());
  tendril::trace::Trace trace;
  {
    tendril::trace::Tracer tracer(hub, "SimNet.Faults");
    tendril::run(hub, [&] {
      tendril::Listener l = tendril::listen(server_at);
      hub.sim_net().refuse(server_at, 1);
      EXPECT_EQ(errno_of([&] { tendril::connect(server_at); }), ECONNREFUSED);
      hub.sim_net().reset_after(server_at, anyone, 4);
      tendril::Stream c = tendril::connect(server_at);
      tendril::Stream s = l.accept();
      c.sendall("hello");
      EXPECT_EQ(s.recv(100), "hell");
      hub.sim_net().partition(server_at, anyone, 1ms, 2ms);
    });
    trace = tracer.trace();
  }
  std::vector<std::string> faults;
  for (const auto& e : trace.events) {
    if (e.kind == tendril::trace::EventKind::fault) {
      faults.push_back(std::to_string(e.greenlet) + " " + e.reason + " " + e.name + " @" +
                       std::to_string(e.time_ns / 1000));
    }
  }
  EXPECT_EQ(faults, (std::vector<std::string>{
                        "1 refused sim-client:40000 -> 10.0.0.1:80 @0",
                        "0 reset sim-client:40001 <-> 10.0.0.1:80 @50",
                        "1 partition 10.0.0.1:80 <-> :0 from +1000000 ns for 2000000 ns @50",
                    }));
  // The trace file keeps them.
  EXPECT_EQ(tendril::trace::parse_trace(tendril::trace::format_trace(trace), "faults.trace"),
            trace);
}

// SimHub refuses select_fds(): a real descriptor would make a simulated run unrepeatable.
TEST(SimNet, SelectFdsIsRefusedWithAClearError) {
  tendril::SimHub hub;
  std::string message;
  tendril::run(hub, [&] {
    try {
      tendril::select_fds({0}, {}, 1s);
    } catch (const tendril::UsageError& e) {
      message = e.what();
    }
    EXPECT_EQ(tendril::now(), 0s);
  });
  EXPECT_EQ(message,
            "tendril::select_fds: SimHub cannot wait on file descriptors (fd 0): its network is "
            "simulated and a real descriptor would make the run unrepeatable; use tendril::Stream "
            "and select()");
}

// recv_into() reads into the caller's buffer: what arrived, then 0 at EOF; a null buffer is a
// UsageError that names the call.
TEST(SimNet, RecvIntoFillsTheCallersBuffer) {
  tendril::SimHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen({"10.0.0.1", 80});
    tendril::Stream c = tendril::connect({"10.0.0.1", 80});
    tendril::Stream s = l.accept();
    c.sendall("hello");
    c.shutdown();
    char buf[8] = {};
    const std::size_t got = s.recv_into(buf, sizeof buf);
    log.push_back(std::to_string(got) + " " + std::string(buf, got));
    log.push_back(std::to_string(s.recv_into(buf, sizeof buf)));
    try {
      s.recv_into(nullptr, 4);
    } catch (const tendril::UsageError& e) {
      log.push_back(e.what());
    }
  });
  EXPECT_EQ(
      log, (std::vector<std::string>{"5 hello", "0", "tendril::Stream::recv_into: a null buffer"}));
}
