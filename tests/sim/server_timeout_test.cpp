// SPDX-License-Identifier: Apache-2.0
// StreamServer against slow and idle clients on the simulated network, at exact virtual times:
// the idle timeout, eviction when every handler is busy (slowloris), and Stream's own timeout.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "tendril/net.hpp"
#include "tendril/sim.hpp"

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

std::int64_t now_ms() { return tendril::now().count() / 1'000'000; }
std::int64_t now_us() { return tendril::now().count() / 1000; }

const tendril::Address server_at{"10.0.0.1", 80};
const char* const request = "GET / HTTP/1.0\r\n\r\n";
const char* const response = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n";

// http_handler reads one request (up to the blank line) and answers it; a client that closes
// first is dropped.
void http_handler(tendril::Stream& s) {
  std::string got;
  while (got.find("\r\n\r\n") == std::string::npos) {
    const std::string part = s.recv(4096);
    if (part.empty()) return;
    got += part;
  }
  s.sendall(response);
}

// read_all() reads until EOF, giving up after timeout in all (the Timeout propagates).
std::string read_all(tendril::Stream& s, tendril::Duration timeout) {
  std::string out;
  tendril::TimeoutScope scope(timeout);
  for (std::string part; !(part = s.recv(4096)).empty();) out += part;
  return out;
}

// closed_by_peer() tells whether the server closed s: EOF or a reset.
bool closed_by_peer(tendril::Stream& s, tendril::Duration wait) {
  try {
    return s.recv(1, wait).empty();
  } catch (const std::system_error& e) {
    return e.code().value() == ECONNRESET;
  } catch (const tendril::Timeout&) {
    return false;
  }
}

// Errors collects what the hub's error handler is given (a greenlet failure report).
struct Errors {
  Log reported;
  void install(tendril::Hub& hub) {
    hub.set_error_handler([this](tendril::Greenlet& g, std::exception_ptr e) {
      reported.push_back(g.describe() + ": " + tendril::describe_exception(e));
    });
  }
};

}  // namespace

// Clients that connect and send nothing are closed exactly idle_timeout after their handler
// started waiting, quietly: counted in timed_out(), not reported as greenlet failures. A client
// sending a byte every 1.5 s against a 2 s timeout stays; once it stops, it is closed 2 s after
// its last byte arrived.
TEST(SimServerTimeout, IdleClientsAreClosedAtTheIdleTimeout) {
  tendril::SimHub hub(fixed_latency());
  Errors errors;
  errors.install(hub);
  Log log;
  tendril::run(hub, [&] {
    tendril::StreamServer server(tendril::listen(server_at), http_handler,
                                 {.concurrency = 10, .idle_timeout = 2s});
    server.start();
    std::vector<tendril::Ref<tendril::Greenlet>> clients;
    for (int i = 0; i < 3; ++i) {
      clients.push_back(tendril::spawn([&, i] {
        tendril::sleep(i * 100ms);
        tendril::Stream c = tendril::connect(server_at);
        const bool closed = closed_by_peer(c, 1h);
        log.push_back("idle " + std::to_string(i) + (closed ? " closed at " : " open at ") +
                      std::to_string(now_us()) + " us");
      }));
    }
    clients.push_back(tendril::spawn([&] {
      tendril::Stream c = tendril::connect(server_at);
      for (int b = 0; b < 4; ++b) {
        c.sendall("G");
        if (closed_by_peer(c, 1500ms)) log.push_back("drip closed early");
      }
      const bool closed = closed_by_peer(c, 1h);
      log.push_back(std::string("drip ") + (closed ? "closed at " : "open at ") +
                    std::to_string(now_us()) + " us");
    }));
    EXPECT_EQ(tendril::joinall(clients, 1h).size(), clients.size());
    EXPECT_EQ(server.handled(), 4u);
    EXPECT_EQ(server.timed_out(), 4u);
    EXPECT_EQ(server.evicted(), 0u);
    server.stop(1s);
  });
  // A simulated connect is accepted at once and the handler starts waiting then; the FIN takes
  // one latency (50 us) back: 2 s + 50 us after the connect. The drip's last byte is sent at 4.5 s
  // and arrives at 4.5 s + 50 us; the timeout fires 2 s later and the FIN arrives 50 us after that.
  EXPECT_EQ(log, (Log{"idle 0 closed at 2000050 us", "idle 1 closed at 2100050 us",
                      "idle 2 closed at 2200050 us", "drip closed at 6500100 us"}));
  EXPECT_EQ(errors.reported, Log{});
}

namespace {

struct SlowlorisResult {
  int normal_served = 0;
  int normal_failed = 0;
  std::int64_t normal_worst_us = 0;
  int slow_closed = 0;
  std::int64_t first_slow_closed_us = -1;
  std::int64_t last_slow_closed_us = -1;
  std::size_t evicted = 0;
  std::size_t timed_out = 0;
  Log reported;
};

// slowloris() runs a server with `concurrency` handlers against `slow` clients that connect at
// 0 and send one byte per virtual second, never finishing their request (until 30 s), while from
// 0.5 s on ten new normal clients make one request each every 100 ms (100 in all, until 1.4 s),
// each with a 5 s timeout.
SlowlorisResult slowloris(tendril::StreamServer::Options options, int slow) {
  tendril::SimHub hub(fixed_latency());
  Errors errors;
  errors.install(hub);
  SlowlorisResult r;
  tendril::run(hub, [&] {
    tendril::StreamServer server(tendril::listen(server_at), http_handler, options);
    server.start();
    std::vector<tendril::Ref<tendril::Greenlet>> clients;
    for (int i = 0; i < slow; ++i) {
      clients.push_back(tendril::spawn([&] {
        tendril::Stream c = tendril::connect(server_at);
        while (tendril::now() < 30s) {
          try {
            c.sendall("G");
          } catch (const std::system_error&) {
            // The server closed the connection while a byte was on its way.
          }
          if (closed_by_peer(c, 1s)) {
            ++r.slow_closed;
            if (r.first_slow_closed_us < 0) r.first_slow_closed_us = now_us();
            r.last_slow_closed_us = now_us();
            return;
          }
        }
      }));
    }
    for (int i = 0; i < 100; ++i) {
      clients.push_back(tendril::spawn([&, i] {
        tendril::sleep(500ms + (i / 10) * 100ms);
        const std::int64_t start = now_us();
        try {
          tendril::Stream c = tendril::connect(server_at, 5s);
          c.sendall(request, 5s);
          if (read_all(c, 5s) == response) {
            ++r.normal_served;
          } else {
            ++r.normal_failed;
          }
        } catch (const tendril::Timeout&) {
          ++r.normal_failed;
        }
        r.normal_worst_us = std::max(r.normal_worst_us, now_us() - start);
      }));
    }
    EXPECT_EQ(tendril::joinall(clients, 1h).size(), clients.size());
    r.evicted = server.evicted();
    r.timed_out = server.timed_out();
    server.stop(1s);
  });
  r.reported = errors.reported;
  return r;
}

}  // namespace

// The slowloris attack of the issue, scaled down: 30 clients sending one byte a second against
// 10 handlers. By default (idle timeout 60 s, eviction on) every normal client is served at full
// speed (100 us: the request's and the response's latencies; a simulated connect is instant).
// The 20 slow clients waiting to be accepted at 0 each evict the oldest slow one, and the first
// burst of 10 normal clients at 0.5 s evicts the last 10: 30 evictions, none reported as failed.
TEST(SimServerTimeout, SlowlorisDoesNotStarveNormalClients) {
  const SlowlorisResult r = slowloris({.concurrency = 10}, 30);
  EXPECT_EQ(r.normal_served, 100);
  EXPECT_EQ(r.normal_failed, 0);
  EXPECT_EQ(r.normal_worst_us, 100);
  EXPECT_EQ(r.evicted, 30u);
  EXPECT_EQ(r.slow_closed, 30);
  // An evicted client sees the FIN one latency (50 us) after its handler was killed.
  EXPECT_EQ(r.first_slow_closed_us, 50);
  EXPECT_EQ(r.last_slow_closed_us, 500'050);
  EXPECT_EQ(r.timed_out, 0u);
  EXPECT_EQ(r.reported, Log{});
}

// Without eviction the same attack holds every handler: a client sending a byte a second never
// waits the 60 s idle timeout, so no normal client is served while the attack lasts (30 s; each
// gives up after 5 s). This is why eviction is on by default.
TEST(SimServerTimeout, WithoutEvictionSlowlorisStarvesNormalClients) {
  const SlowlorisResult r = slowloris({.concurrency = 10, .evict_when_full = false}, 30);
  EXPECT_EQ(r.normal_served, 0);
  EXPECT_EQ(r.normal_failed, 100) << "served " << r.normal_served;
  EXPECT_EQ(r.evicted, 0u);
  EXPECT_EQ(r.timed_out, 0u);
  EXPECT_EQ(r.slow_closed, 0);
  EXPECT_EQ(r.reported, Log{});
}

// The documented defaults: concurrency 1000, idle_timeout 60 s, eviction on; the old constructor
// keeps them with its concurrency; each accepted stream has the idle timeout as its own timeout;
// a stream from connect() has none.
TEST(SimServerTimeout, DefaultsAreAsDocumented) {
  const tendril::StreamServer::Options defaults;
  EXPECT_EQ(defaults.concurrency, 1000u);
  EXPECT_EQ(defaults.idle_timeout, std::optional<tendril::Duration>(60s));
  EXPECT_TRUE(defaults.evict_when_full);
  tendril::SimHub hub(fixed_latency());
  Log log;
  tendril::run(hub, [&] {
    tendril::StreamServer server(
        tendril::listen(server_at),
        [&](tendril::Stream& s) {
          log.push_back("handler stream timeout " +
                        std::to_string(s.timeout().value_or(-1ns).count()) + " ns");
          s.recv(1);
        },
        7);
    EXPECT_EQ(server.options().concurrency, 7u);
    EXPECT_EQ(server.options().idle_timeout, std::optional<tendril::Duration>(60s));
    EXPECT_TRUE(server.options().evict_when_full);
    server.start();
    tendril::Stream c = tendril::connect(server_at);
    EXPECT_EQ(c.timeout(), std::nullopt);
    EXPECT_TRUE(closed_by_peer(c, 1h));
    log.push_back("closed at " + std::to_string(now_us()) + " us");
    EXPECT_EQ(server.timed_out(), 1u);
    server.stop(1s);
  });
  EXPECT_EQ(log, (Log{"handler stream timeout 60000000000 ns", "closed at 60000050 us"}));
}

// idle_timeout std::nullopt: accepted streams have no timeout, and an idle client stays
// connected for a virtual day.
TEST(SimServerTimeout, NoIdleTimeoutMeansNoLimit) {
  tendril::SimHub hub(fixed_latency());
  tendril::run(hub, [&] {
    bool has_timeout = true;
    tendril::StreamServer server(tendril::listen(server_at),
                                 [&](tendril::Stream& s) {
                                   has_timeout = s.timeout().has_value();
                                   s.recv(1);
                                 },
                                 {.idle_timeout = std::nullopt});
    server.start();
    tendril::Stream c = tendril::connect(server_at);
    EXPECT_FALSE(closed_by_peer(c, 24h));
    EXPECT_FALSE(has_timeout);
    EXPECT_EQ(server.timed_out(), 0u);
    server.stop(0s);  // kills the waiting handler
  });
}

// A timeout given to the call wins over the stream's own, shorter or longer; a Timeout that is
// not the stream's own (the call's, or a TimeoutScope's) leaving a handler is a failure, reported
// as before, and not counted in timed_out().
TEST(SimServerTimeout, ExplicitTimeoutsWinAndAreFailures) {
  tendril::SimHub hub(fixed_latency());
  Errors errors;
  errors.install(hub);
  Log log;
  tendril::run(hub, [&] {
    int n = 0;
    tendril::StreamServer server(tendril::listen(server_at),
                                 [&](tendril::Stream& s) {
                                   const int me = n++;
                                   const std::int64_t start = now_ms();
                                   auto note = [&](const std::string& what) {
                                     log.push_back(std::to_string(me) + ": " + what + " after " +
                                                   std::to_string(now_ms() - start) +
                                                   " ms, expired " +
                                                   (s.timeout_expired() ? "yes" : "no"));
                                   };
                                   try {
                                     if (me == 0) s.recv(1, 5s);
                                     if (me == 1) s.recv(1, 300ms);
                                     if (me == 2) {
                                       tendril::TimeoutScope scope(700ms);
                                       s.recv(1);
                                     }
                                   } catch (const tendril::Timeout&) {
                                     note("Timeout");
                                     throw;
                                   }
                                 },
                                 {.idle_timeout = 1s});
    server.start();
    std::vector<tendril::Stream> clients;
    for (int i = 0; i < 3; ++i) clients.push_back(tendril::connect(server_at));
    tendril::sleep(10s);
    EXPECT_EQ(server.timed_out(), 0u);
    server.stop(1s);
  });
  EXPECT_EQ(log, (Log{"1: Timeout after 300 ms, expired no", "2: Timeout after 700 ms, expired no",
                      "0: Timeout after 5000 ms, expired no"}));
  EXPECT_EQ(errors.reported, (Log{"#4: Timeout", "#5: Timeout", "#3: Timeout"}));
}

// Stream's own timeout applies to recv, send and sendall called without one; sendall's is one
// deadline for the whole call; zero takes only what is ready; timeout_expired() says which
// timeout fired and is reset by the next call.
TEST(SimServerTimeout, StreamOwnTimeout) {
  tendril::SimOptions options = fixed_latency();
  options.net.buffer_bytes = 100;
  tendril::SimHub hub(options);
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen(server_at);
    tendril::Stream c = tendril::connect(server_at);
    tendril::Stream s = l.accept();
    c.set_timeout(250ms);
    EXPECT_EQ(c.timeout(), std::optional<tendril::Duration>(250ms));
    EXPECT_THROW(c.recv(10), tendril::Timeout);
    EXPECT_TRUE(c.timeout_expired());
    EXPECT_EQ(now_us(), 250'000);
    EXPECT_THROW(c.recv(10, 100ms), tendril::Timeout);
    EXPECT_FALSE(c.timeout_expired());
    EXPECT_EQ(now_us(), 350'000);
    // The peer reads 10 bytes every 100 ms: sendall of 1000 bytes would take about a second,
    // but the stream's 250 ms bound the whole call, not each write.
    auto reader = tendril::spawn([&] {
      for (;;) {
        tendril::sleep(100ms);
        if (s.recv(10).empty()) return;
      }
    });
    EXPECT_THROW(c.sendall(std::string(1000, 'x')), tendril::Timeout);
    EXPECT_TRUE(c.timeout_expired());
    EXPECT_EQ(now_us(), 600'000);
    c.set_timeout(0s);
    EXPECT_THROW(c.send(std::string(1000, 'x')), tendril::Timeout);
    EXPECT_EQ(now_us(), 600'000);
    s.sendall("hi");
    tendril::sleep(1ms);
    EXPECT_EQ(c.recv(10), "hi");
    EXPECT_FALSE(c.timeout_expired());
    c.set_timeout(std::nullopt);
    EXPECT_EQ(c.timeout(), std::nullopt);
    reader->kill();
  });
}

// Bad input is refused with a UsageError that names the call and the value.
TEST(SimServerTimeout, BadTimeoutsAreRefused) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    auto message = [](auto&& f) -> std::string {
      try {
        f();
      } catch (const tendril::UsageError& e) {
        return e.what();
      }
      return "no error";
    };
    tendril::Stream closed;
    EXPECT_EQ(message([&] { closed.set_timeout(-1ns); }),
              "tendril::Stream::set_timeout: negative timeout (-1 ns)");
    EXPECT_EQ(message([&] {
                tendril::StreamServer(tendril::listen(server_at), http_handler,
                                      {.idle_timeout = 0s});
              }),
              "tendril::StreamServer: idle_timeout must be positive (got 0 ns); pass "
              "std::nullopt for no limit");
    EXPECT_EQ(message([&] {
                tendril::StreamServer(tendril::listen(server_at), http_handler,
                                      {.idle_timeout = -5s});
              }),
              "tendril::StreamServer: idle_timeout must be positive (got -5000000000 ns); pass "
              "std::nullopt for no limit");
    EXPECT_EQ(message([&] {
                tendril::StreamServer(tendril::listen(server_at), http_handler, {.concurrency = 0});
              }),
              "tendril::StreamServer: concurrency must be at least 1");
    tendril::Listener l = tendril::listen(server_at);
    tendril::Stream c = tendril::connect(server_at);
    EXPECT_EQ(message([&] { c.sendall("x", -1ms); }),
              "tendril::Stream::sendall: negative timeout (-1000000 ns)");
  });
}
