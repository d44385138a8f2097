// SPDX-License-Identifier: Apache-2.0
// The real hub's waits on file descriptors: a stream keeps one libev watcher per direction across
// waits, so these pin what that must not break: two greenlets waiting on one stream, a reader and
// a writer on one stream at once, waits ended by a timeout or a kill, and descriptor numbers
// reused by new connections.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <system_error>
#include <vector>

#include "tendril/net.hpp"
#include "tendril/realio.hpp"

using namespace std::chrono_literals;

namespace {

// A connected pair on loopback: {client side, server side}.
// (Named references to its members rather than a structured binding: clang 14 cannot capture a
// structured binding in a lambda, a C++20 feature it gained in clang 16.)
std::pair<tendril::Stream, tendril::Stream> connected_pair(tendril::Listener& l) {
  tendril::Stream c = tendril::connect(l.address(), 5s);
  tendril::Stream s = l.accept(5s);
  return {std::move(c), std::move(s)};
}

}  // namespace

// Two greenlets blocked in recv on the same stream both wake and, together, get every byte once.
TEST(FdWait, TwoReadersOnOneStream) {
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen({"127.0.0.1", 0});
    auto streams = connected_pair(l);
    tendril::Stream& c = streams.first;
    tendril::Stream& s = streams.second;
    std::vector<std::string> got;
    auto reader = [&] { got.push_back(s.recv(1, 5s)); };
    std::vector<tendril::Ref<tendril::Greenlet>> readers{tendril::spawn(reader),
                                                         tendril::spawn(reader)};
    tendril::sleep(10ms);  // both are parked in recv, on the same descriptor
    c.sendall("ab");
    EXPECT_EQ(tendril::joinall(readers, 5s).size(), readers.size());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::string>{"a", "b"}));
  });
}

// A writer blocked on a full socket buffer and a reader blocked in recv on the same stream each
// wake for their own direction: all 32 MiB arrive in order and the reader gets its message.
TEST(FdWait, ReaderAndWriterOnOneStream) {
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen({"127.0.0.1", 0});
    auto streams = connected_pair(l);
    tendril::Stream& c = streams.first;
    tendril::Stream& s = streams.second;
    std::string big(32 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 251);
    std::string message;
    auto reader = tendril::spawn([&] { message = s.recv(16, 5s); });
    auto writer = tendril::spawn([&] { s.sendall(big, 10s); });
    tendril::sleep(
        10ms);  // the writer has filled the buffers and waits to write, the reader to read
    EXPECT_FALSE(writer->dead());
    c.sendall("hello");
    EXPECT_TRUE(reader->join(5s));
    EXPECT_EQ(message, "hello");
    std::string received;
    while (received.size() < big.size()) received += c.recv(65536, 5s);
    EXPECT_TRUE(writer->join(5s));
    EXPECT_TRUE(received == big);
  });
}

// A wait that timed out, and one whose greenlet was killed, leave the stream's watcher ready for
// the next wait.
TEST(FdWait, WaitsAfterATimeoutAndAKill) {
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen({"127.0.0.1", 0});
    auto streams = connected_pair(l);
    tendril::Stream& c = streams.first;
    tendril::Stream& s = streams.second;
    EXPECT_THROW(s.recv(4, 10ms), tendril::Timeout);
    auto doomed = tendril::spawn([&] { s.recv(4); });
    tendril::sleep(10ms);
    doomed->kill();
    EXPECT_TRUE(doomed->dead());
    auto reader = tendril::spawn([&] { return s.recv(4, 5s); });
    tendril::sleep(10ms);
    c.sendall("late");
    EXPECT_EQ(reader->get(5s), "late");
    EXPECT_EQ(hub.pending_timers(), 0u);
  });
}

// A stream closed and a new one given the same descriptor number within one loop iteration (the
// handler woken for one connection closes it and accepts the next, which is already queued): the
// new stream's first wait must register its descriptor again, else it is never woken.
TEST(FdWait, DescriptorNumberReusedWithinOneIteration) {
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    tendril::Listener l = tendril::listen({"127.0.0.1", 0});
    std::vector<tendril::Stream> clients;
    clients.push_back(tendril::connect(l.address(), 5s));
    tendril::Stream first = l.accept(5s);
    for (int i = 1; i < 5; ++i) clients.push_back(tendril::connect(l.address(), 5s));
    std::vector<std::string> got;
    auto server = tendril::spawn([&] {
      tendril::Stream s = std::move(first);
      for (int i = 0; i < 5; ++i) {
        got.push_back(s.recv(16, 1s));  // woken by libev, inside its callback
        s.close();                      // frees the descriptor number...
        if (i < 4) s = l.accept(1s);    // ...which the queued connection gets at once
      }
    });
    for (int i = 0; i < 5; ++i) {
      tendril::sleep(5ms);  // the server waits in recv
      clients[static_cast<std::size_t>(i)].sendall("client " + std::to_string(i));
    }
    EXPECT_TRUE(server->join(10s));
    EXPECT_EQ(got, (std::vector<std::string>{"client 0", "client 1", "client 2", "client 3",
                                             "client 4"}));
  });
}

// t_selectfd: select_fds() over a pipe the program made itself, in gevent's order: a ready
// descriptor still yields once (the writer runs), then reading waits for the writer's byte, and
// an idle descriptor times out with empty lists.
TEST(FdWait, SelectFdsOverAPipe) {
  tendril::LibevHub hub;
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    tendril::spawn([&] {
      log.push_back("writer runs");
      ASSERT_EQ(::write(p[1], "x", 1), 1);
    });
    auto first = tendril::select_fds({p[0]}, {p[1]}, 1s);
    log.push_back("first " + std::to_string(first.readable.size()) + " " +
                  std::to_string(first.writable.size()));
    auto second = tendril::select_fds({p[0]}, {}, 1s);
    log.push_back(std::string("second ") +
                  (second.readable == std::vector<std::size_t>{0} ? "True" : "False"));
    char c;
    ASSERT_EQ(::read(p[0], &c, 1), 1);
    auto idle = tendril::select_fds({p[0]}, {}, 50ms);
    log.push_back("timeout " + std::to_string(idle.readable.size()));
  });
  EXPECT_EQ(log,
            (std::vector<std::string>{"writer runs", "first 0 1", "second True", "timeout 0"}));
  ::close(p[0]);
  ::close(p[1]);
  // A closed descriptor is EBADF, a negative one a UsageError, as gevent's OSError / ValueError.
  tendril::run(hub, [&] {
    try {
      tendril::select_fds({p[0]}, {}, 1s);
      ADD_FAILURE() << "no error for a closed fd";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
      EXPECT_EQ(std::string(e.what()).rfind(
                    "tendril: tendril::select_fds: fd " + std::to_string(p[0]) + ": ", 0),
                0u)
          << e.what();
    }
    try {
      tendril::select_fds({}, {3, -1}, 1s);
      ADD_FAILURE() << "no error for a negative fd";
    } catch (const tendril::UsageError& e) {
      EXPECT_STREQ(e.what(),
                   "tendril::select_fds: fd -1 (entry 1 of the writable list) is negative");
    }
  });
}
