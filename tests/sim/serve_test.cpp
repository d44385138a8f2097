// SPDX-License-Identifier: Apache-2.0
// tendril::serve and StopServe, pinned to eventlet 0.33's observable order
// (tests/gevent_twins/eventlet_semantics.py, blocks w1 to w3, prints eventlet's side), on the
// simulated network.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "tendril/sim.hpp"

using namespace std::chrono_literals;
using tendril::SimHub;
using Log = std::vector<std::string>;

namespace {

const tendril::Address at{"10.0.0.1", 80};

// quoted() renders a received string as Python's repr of bytes does for these tests.
std::string quoted(const std::string& s) { return "b'" + s + "'"; }

void client(Log& log, const std::string& msg, const std::string& name) {
  tendril::Stream c = tendril::connect(at);
  c.sendall(msg);
  log.push_back(name + " got " + c.recv(100));
  log.push_back(name + " then " + quoted(c.recv(100)));
}

}  // namespace

// w1: a handler per connection, the stream closed when it returns; StopServe ends serve().
TEST(Serve, HandlesEachConnectionClosesItAndStopsOnStopServe) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Listener server = tendril::listen(at);
    auto clients = tendril::spawn([&] {
      client(log, "a", "client a");
      client(log, "b", "client b");
      tendril::Stream c = tendril::connect(at);
      c.sendall("stop");
      c.recv(100);
    });
    tendril::serve(server, [&](tendril::Stream& conn, const tendril::Address&) {
      const std::string data = conn.recv(100);
      log.push_back("handle " + data);
      conn.sendall("re " + data);
      if (data == "stop") throw tendril::StopServe();
    });
    log.push_back("serve returned");
    clients->join();
  });
  EXPECT_EQ(log, (Log{"handle a", "client a got re a", "client a then b''", "handle b",
                      "client b got re b", "client b then b''", "handle stop", "serve returned"}));
}

// w2: any other exception from a handler ends serve() with it; the stream is closed.
TEST(Serve, AHandlersExceptionEndsServeWithIt) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Listener server = tendril::listen(at);
    auto clients = tendril::spawn([&] {
      tendril::Stream c = tendril::connect(at);
      c.sendall("x");
      log.push_back("client then " + quoted(c.recv(100)));
    });
    try {
      tendril::serve(server, [&](tendril::Stream& conn, const tendril::Address&) {
        const std::string data = conn.recv(100);
        log.push_back("handle " + data);
        throw std::invalid_argument("bad request " + data);
      });
    } catch (const std::invalid_argument& e) {
      log.push_back(std::string("serve raised ") + e.what());
    }
    clients->join();
  });
  EXPECT_EQ(log, (Log{"handle x", "serve raised bad request x", "client then b''"}));
}

// w3: at most `concurrency` handlers at once; a connection beyond waits for one to finish.
Log run_w3(std::size_t concurrency) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Listener server = tendril::listen(at);
    auto one = [&](const std::string& name) {
      tendril::Stream c = tendril::connect(at);
      c.sendall(name);
      c.recv(100);
    };
    auto clients = tendril::spawn([&] {
      auto a = tendril::spawn(one, std::string("a"));
      tendril::sleep(10ms);
      auto b = tendril::spawn(one, std::string("b"));
      a->join();
      b->join();
      tendril::Stream c = tendril::connect(at);
      c.sendall("stop");
    });
    tendril::serve(
        server,
        [&](tendril::Stream& conn, const tendril::Address&) {
          const std::string data = conn.recv(100);
          if (data == "stop") throw tendril::StopServe();
          log.push_back("start " + data);
          tendril::sleep(50ms);
          log.push_back("end " + data);
          conn.sendall("ok");
        },
        concurrency);
    clients->join();
  });
  return log;
}

TEST(Serve, ConcurrencyBoundsTheHandlersAtOnce) {
  EXPECT_EQ(run_w3(1), (Log{"start a", "end a", "start b", "end b"}));
  EXPECT_EQ(run_w3(2), (Log{"start a", "start b", "end a", "end b"}));
}

// When serve() ends by a handler's exception, the other handlers are killed and their streams
// closed (eventlet leaves them running); their clients see EOF.
TEST(Serve, AFailureClosesTheOtherHandlersStreams) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Listener server = tendril::listen(at);
    auto clients = tendril::spawn([&] {
      tendril::Stream slow = tendril::connect(at);
      slow.sendall("slow");
      tendril::sleep(10ms);
      tendril::Stream bad = tendril::connect(at);
      bad.sendall("bad");
      log.push_back("slow client then " + quoted(slow.recv(100)));
    });
    try {
      tendril::serve(server, [&](tendril::Stream& conn, const tendril::Address&) {
        const std::string data = conn.recv(100);
        if (data == "bad") throw std::runtime_error("bad one");
        try {
          tendril::sleep(10s);
        } catch (const tendril::GreenletExit&) {
          log.push_back("slow handler killed");
          throw;
        }
      });
    } catch (const std::runtime_error& e) {
      log.push_back(std::string("serve raised ") + e.what());
    }
    clients->join();
  });
  EXPECT_EQ(log, (Log{"slow handler killed", "serve raised bad one", "slow client then b''"}));
}

TEST(Serve, BadInput) {
  SimHub hub;
  std::string what;
  tendril::run(hub, [&] {
    tendril::Listener server = tendril::listen(at);
    try {
      tendril::serve(
          server, [](tendril::Stream&, const tendril::Address&) {}, 0);
    } catch (const tendril::UsageError& e) {
      what = e.what();
    }
  });
  EXPECT_EQ(what, "tendril::serve: concurrency must be at least 1, got 0");
}
