// SPDX-License-Identifier: Apache-2.0
// TCP on the real hub (the echo server with 100 clients is in conformance_test.cpp, on both
// hubs): the concurrency limit, IPv6 loopback, timeouts, and clear network errors.
#include "tendril/net.hpp"

#include <gtest/gtest.h>
#include <netdb.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>
#include <vector>

#include "tendril/realio.hpp"
#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

using namespace std::chrono_literals;

// At the concurrency limit the server stops accepting until a handler finishes.
TEST(Net, ServerConcurrencyLimit) {
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    int running = 0, peak = 0;
    tendril::StreamServer server(
        tendril::listen({"127.0.0.1", 0}),
        [&](tendril::Stream& s) {
          peak = std::max(peak, ++running);
          tendril::sleep(20ms);
          s.sendall("bye");
          --running;
        },
        2);
    server.start();
    std::vector<tendril::Ref<tendril::Greenlet>> clients;
    for (int c = 0; c < 6; ++c) {
      clients.push_back(tendril::spawn([&] {
        tendril::Stream s = tendril::connect(server.address(), 5s);
        EXPECT_EQ(s.recv(16, 5s), "bye");
      }));
    }
    EXPECT_EQ(tendril::joinall(clients, 10s).size(), clients.size());
    EXPECT_EQ(peak, 2);
    server.stop(1s);
  });
}

// IPv6 loopback works the same.
TEST(Net, Ipv6Loopback) {
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen({"::1", 0});
    const auto at = l.address();
    EXPECT_EQ(at.host, "::1");
    auto server = tendril::spawn([&] {
      tendril::Stream s = l.accept(5s);
      s.sendall(s.recv(5, 5s));
    });
    tendril::Stream c = tendril::connect(at, 5s);
    c.sendall("hello");
    EXPECT_EQ(c.recv(5, 5s), "hello");
    server->join();
  });
}

// A refused connection is a std::system_error with ECONNREFUSED; recv and accept time out.
TEST(Net, ErrorsAndTimeouts) {
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen({"127.0.0.1", 0});
    const auto port = l.address().port;
    EXPECT_THROW(l.accept(10ms), tendril::Timeout);
    l.close();
    try {
      tendril::connect({"127.0.0.1", port}, 1s);
      ADD_FAILURE() << "connected to a closed port";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNREFUSED) << e.what();
    }
    tendril::Listener l2 = tendril::listen({"127.0.0.1", 0});
    tendril::Stream c = tendril::connect(l2.address(), 1s);
    tendril::Stream s = l2.accept(1s);
    EXPECT_THROW(c.recv(10, 10ms), tendril::Timeout);
    s.close();
    EXPECT_EQ(c.recv(10, 1s), "");                 // EOF
    EXPECT_THROW(s.recv(1), tendril::UsageError);  // closed stream
  });
  tendril::SimHub sim;
  tendril::run(sim, [] {
    try {
      tendril::connect({"10.9.9.9", 80}, 1s);
      ADD_FAILURE() << "connected to nothing";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNREFUSED) << e.what();
    }
  });
}

// Destroying a running server stops it without waiting and leaves nothing dangling.
TEST(Net, DestroyingARunningServerIsSafe) {
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    tendril::Address at;
    {
      tendril::StreamServer server(tendril::listen({"127.0.0.1", 0}), [](tendril::Stream& s) {
        tendril::sleep(10s);
        s.sendall("late");
      });
      server.start();
      at = server.address();
      auto client = tendril::spawn([&] { tendril::connect(at, 1s).recv(4, 1s); });
      tendril::sleep(20ms);  // the handler is running, the client waiting
      EXPECT_EQ(server.handled(), 1u);
      client->kill();
    }
    tendril::sleep(20ms);  // the killed accept loop and handler unwind
  });
  EXPECT_EQ(hub.live_greenlets(), 0u);
}

// The seed's hello HTTP/1.0 server (each request sleeps 0.1 s): 200 concurrent clients are all
// answered together, in a fraction of the 20 s a blocking server would need.
TEST(Net, HelloHttpWith200ConcurrentClients) {
  tendril::LibevHub hub;
  int ok = 0;
  const auto start = std::chrono::steady_clock::now();
  tendril::run(hub, [&] {
    tendril::StreamServer server(tendril::listen({"127.0.0.1", 0}), [](tendril::Stream& s) {
      std::string request;
      while (request.find("\r\n\r\n") == std::string::npos) {
        std::string part = s.recv(4096, 5s);
        if (part.empty()) return;
        request += part;
      }
      tendril::sleep(100ms);
      s.sendall("HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nHello World\n");
    });
    server.start();
    std::vector<tendril::Ref<tendril::Greenlet>> clients;
    for (int c = 0; c < 200; ++c) {
      clients.push_back(tendril::spawn([&] {
        tendril::Stream s = tendril::connect(server.address(), 5s);
        s.sendall("GET / HTTP/1.0\r\n\r\n");
        std::string response;
        for (;;) {
          std::string part = s.recv(4096, 5s);
          if (part.empty()) break;
          response += part;
        }
        if (response.size() > 12 && response.substr(response.size() - 12) == "Hello World\n" &&
            response.rfind("HTTP/1.0 200 OK", 0) == 0) {
          ++ok;
        }
      }));
    }
    EXPECT_EQ(tendril::joinall(clients, 20s).size(), clients.size());
    server.stop(1s);
  });
  EXPECT_EQ(ok, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // blocking: 200 x 0.1 s = 20 s
}

// A traced run on the real hub records fd readiness as io events, just before the woken wait's
// wake and switch.
TEST(Net, TracerRecordsFdReadiness) {
  tendril::LibevHub hub;
  tendril::trace::Tracer tracer(hub, "io");
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen({"127.0.0.1", 0});
    auto server = tendril::spawn("server", [&] {
      tendril::Stream s = l.accept(5s);
      EXPECT_EQ(s.recv(2, 5s), "hi");
    });
    tendril::sleep(0s);  // the server waits in accept
    tendril::Stream c = tendril::connect(l.address(), 5s);
    tendril::sleep(10ms);  // the server is accepted and waits in recv
    c.sendall("hi");
    server->join();
  });
  const tendril::trace::Trace t = tracer.trace();
  std::vector<std::string> io;
  for (std::size_t i = 0; i < t.events.size(); ++i) {
    const auto& e = t.events[i];
    if (e.kind != tendril::trace::EventKind::io) continue;
    ASSERT_LT(i + 2, t.events.size());
    // io, then the wake of the same greenlet, then the hub's switch into it.
    EXPECT_EQ(t.events[i + 1].kind, tendril::trace::EventKind::wake);
    EXPECT_EQ(t.events[i + 1].greenlet, e.greenlet);
    io.push_back(t.greenlet_name(e.greenlet) + " " + e.reason + " " + t.events[i + 1].reason);
  }
  // The client's non-blocking connect completes (writable), the server's accept and recv wake.
  EXPECT_EQ(io,
            (std::vector<std::string>{"main writable connect", "server readable Listener.accept",
                                      "server readable Stream.recv"}));
}

namespace {

// closed_by_server() tells whether the server closed s within wait: EOF, a reset or a broken
// pipe.
bool closed_by_server(tendril::Stream& s, tendril::Duration wait) {
  try {
    return s.recv(1, wait).empty();
  } catch (const std::system_error& e) {
    return e.code().value() == ECONNRESET || e.code().value() == EPIPE;
  } catch (const tendril::Timeout&) {
    return false;
  }
}

}  // namespace

// Slow and idle clients on the real hub: 50 clients sending a byte every 20 ms against 20
// handlers with a 200 ms idle timeout. The 30 waiting to be accepted evict the 30 oldest; 30
// normal clients, one after another, are all served, the first evicting one more slow client;
// when the last 19 stop sending, the idle timeout closes them. Nothing is reported as a failure.
TEST(Net, ServerBoundsSlowAndIdleClients) {
  tendril::LibevHub hub;
  std::vector<std::string> reported;
  hub.set_error_handler([&](tendril::Greenlet&, std::exception_ptr e) {
    reported.push_back(tendril::describe_exception(e));
  });
  const std::string response = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
  int served = 0, slow_evicted = 0, slow_timed_out = 0, slow_open = 0;
  tendril::run(hub, [&] {
    tendril::StreamServer server(tendril::listen({"127.0.0.1", 0}),
                                 [&](tendril::Stream& s) {
                                   std::string request;
                                   while (request.find("\r\n\r\n") == std::string::npos) {
                                     const std::string part =
                                         s.recv(4096);  // the stream's own timeout: 200 ms
                                     if (part.empty()) return;
                                     request += part;
                                   }
                                   s.sendall(response);
                                 },
                                 {.concurrency = 20, .idle_timeout = 200ms});
    server.start();
    bool drip = true;
    std::vector<tendril::Ref<tendril::Greenlet>> slow;
    for (int i = 0; i < 50; ++i) {
      slow.push_back(tendril::spawn([&] {
        tendril::Stream c = tendril::connect(server.address(), 5s);
        try {
          while (drip) {
            c.sendall("G", 1s);
            if (closed_by_server(c, 20ms)) {
              ++slow_evicted;
              return;
            }
          }
        } catch (const std::system_error&) {
          ++slow_evicted;  // closed while the byte was on its way
          return;
        }
        ++(closed_by_server(c, 5s) ? slow_timed_out : slow_open);
      }));
    }
    tendril::sleep(300ms);  // every slow client is accepted
    EXPECT_EQ(server.evicted(), 30u);
    for (int i = 0; i < 30; ++i) {
      tendril::Stream c = tendril::connect(server.address(), 5s);
      c.sendall("GET / HTTP/1.0\r\n\r\n", 5s);
      std::string got;
      for (std::string part; !(part = c.recv(4096, 5s)).empty();) got += part;
      if (got == response) ++served;
    }
    EXPECT_EQ(server.evicted(), 31u);
    EXPECT_EQ(server.timed_out(), 0u);
    drip = false;
    EXPECT_EQ(tendril::joinall(slow, 10s).size(), slow.size());
    EXPECT_EQ(server.timed_out(), 19u);
    EXPECT_EQ(server.handled(), 80u);
    server.stop(1s);
  });
  EXPECT_EQ(served, 30);
  EXPECT_EQ(slow_evicted, 31);
  EXPECT_EQ(slow_timed_out, 19);
  EXPECT_EQ(slow_open, 0);
  EXPECT_EQ(reported, std::vector<std::string>{});
}

// resolve() on both hubs: a numeric address stands for itself, "localhost" is 127.0.0.1, an
// unknown name throws EHOSTUNREACH with the resolver's reason. LibevHub asks the real resolver
// (on the pool), SimHub its name table only, and connect() by name goes the same way.
TEST(Net, ResolveOnBothHubs) {
  const auto outcome = [](const std::string& host) {
    try {
      return tendril::resolve(host);
    } catch (const std::system_error& e) {
      return std::string(e.code().value() == EHOSTUNREACH ? "EHOSTUNREACH " : "other ") + e.what();
    }
  };
  std::vector<std::string> real;
  tendril::LibevHub libev;
  tendril::run(libev, [&] {
    for (const char* host : {"127.0.0.1", "::1", "localhost", "nowhere.invalid"}) {
      real.push_back(outcome(host));
    }
  });
  // What the real resolver says of nowhere.invalid here (RFC 2606: it never resolves).
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo("nowhere.invalid", nullptr, nullptr, &res);
  if (res != nullptr) ::freeaddrinfo(res);
  ASSERT_NE(rc, 0);
  EXPECT_EQ(real, (std::vector<std::string>{
                      "127.0.0.1", "::1", "127.0.0.1",
                      std::string("EHOSTUNREACH tendril: cannot resolve nowhere.invalid: ") +
                          ::gai_strerror(rc) + ": No route to host"}));

  std::vector<std::string> simulated;
  tendril::SimHub sim;
  tendril::run(sim, [&] {
    sim.sim_net().add_host("db.test", "10.0.0.7");
    for (const char* host : {"127.0.0.1", "localhost", "db.test", "nowhere.invalid"}) {
      simulated.push_back(outcome(host));
    }
    tendril::Listener l = tendril::listen({"db.test", 5432});
    simulated.push_back(l.address().to_string());
    tendril::Stream s = tendril::connect({"db.test", 5432});
    simulated.push_back(s.peer().to_string());
    try {
      tendril::connect({"nowhere.invalid", 80});
    } catch (const std::system_error& e) {
      simulated.push_back(e.what());
    }
    try {
      tendril::resolve("");
    } catch (const tendril::UsageError& e) {
      simulated.push_back(e.what());
    }
  });
  EXPECT_EQ(
      simulated,
      (std::vector<std::string>{
          "127.0.0.1", "127.0.0.1", "10.0.0.7",
          "EHOSTUNREACH tendril: cannot resolve nowhere.invalid: Name or service not known: No "
          "route to host",
          "10.0.0.7:5432", "10.0.0.7:5432",
          "tendril: cannot resolve nowhere.invalid: Name or service not known: No route to "
          "host",
          "tendril::resolve: an empty host name"}));
}
