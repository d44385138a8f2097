// SPDX-License-Identifier: Apache-2.0
// Monkey patching (tendril::green) of the socket calls: plain POSIX blocking code on LibevHub
// greenlets, in a test linked with the interposer. Every test arms alarm(): without the layer the
// first blocking call would stall the only thread forever, and SIGALRM ends the test instead.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tendril/realio.hpp"
#include "tendril/sim.hpp"

using namespace std::chrono_literals;

namespace {

// Alarm ends a test that hangs, and disarms on the way out.
struct Alarm {
  explicit Alarm(unsigned seconds) { ::alarm(seconds); }
  ~Alarm() { ::alarm(0); }
};

// real_flags() is F_GETFL past the interposer (the raw system call).
long real_flags(int fd) { return ::syscall(SYS_fcntl, fd, F_GETFL); }

// listen_local() makes a blocking listening socket on 127.0.0.1 with POSIX calls only and
// returns it with its port.
int listen_local(std::uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  EXPECT_EQ(::listen(fd, 128), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// connect_local() is a blocking connect to 127.0.0.1:port; -1 with errno on failure.
int connect_local(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

}  // namespace

// An echo server and its clients, all written with blocking POSIX calls, on one thread: the
// server's accept and recv wait while the clients run. Every client gets its own line back.
TEST(GreenNet, BlockingEchoServerAndClientsShareOneThread) {
  Alarm alarm(20);
  tendril::LibevHub hub;
  std::vector<std::string> replies(20);
  int served = 0;
  tendril::run(hub, [&] {
    std::uint16_t port = 0;
    const int listener = listen_local(&port);
    auto server = tendril::spawn("server", [&] {
      std::vector<tendril::Ref<tendril::Greenlet>> handlers;
      for (int i = 0; i < 20; ++i) {
        const int conn = ::accept(listener, nullptr, nullptr);
        ASSERT_GE(conn, 0) << std::strerror(errno);
        handlers.push_back(tendril::spawn("handler", [&, conn] {
          char buf[256];
          ssize_t n;
          while ((n = ::recv(conn, buf, sizeof buf, 0)) > 0) ::send(conn, buf, n, 0);
          ::close(conn);
          ++served;
        }));
      }
      tendril::joinall(handlers);
    });
    std::vector<tendril::Ref<tendril::Greenlet>> clients;
    for (int i = 0; i < 20; ++i) {
      clients.push_back(tendril::spawn("client", [&, i] {
        const int fd = connect_local(port);
        ASSERT_GE(fd, 0) << std::strerror(errno);
        const std::string line = "hello " + std::to_string(i);
        ASSERT_EQ(::send(fd, line.data(), line.size(), 0), static_cast<ssize_t>(line.size()));
        char buf[64];
        const ssize_t n = ::recv(fd, buf, line.size(), MSG_WAITALL);
        ASSERT_EQ(n, static_cast<ssize_t>(line.size()));
        replies[i].assign(buf, n);
        ::close(fd);
      }));
    }
    tendril::joinall(clients);
    server->join();
    ::close(listener);
  });
  for (int i = 0; i < 20; ++i) EXPECT_EQ(replies[i], "hello " + std::to_string(i));
  EXPECT_EQ(served, 20);
}

// The program sees the blocking mode it asked for; underneath the socket stays non-blocking.
TEST(GreenNet, FcntlAndFionbioShowTheProgramsOwnMode) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(real_flags(fd) & O_NONBLOCK, 0);
  ASSERT_EQ(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
  EXPECT_NE(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  int off = 0;
  ASSERT_EQ(::ioctl(fd, FIONBIO, &off), 0);
  EXPECT_EQ(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(real_flags(fd) & O_NONBLOCK, 0);
  const int copy = ::dup(fd);
  EXPECT_EQ(::fcntl(copy, F_GETFL) & O_NONBLOCK, 0);
  ::close(copy);
  ::close(fd);
  const int nb = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  EXPECT_NE(::fcntl(nb, F_GETFL) & O_NONBLOCK, 0);
  ::close(nb);
  // A descriptor the layer did not make is untouched.
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  EXPECT_EQ(::fcntl(pipefd[0], F_GETFL) & O_NONBLOCK, 0);
  EXPECT_EQ(real_flags(pipefd[0]) & O_NONBLOCK, 0);
  ::close(pipefd[0]);
  ::close(pipefd[1]);
}

// A socket the program made non-blocking answers EAGAIN at once, on a greenlet too.
TEST(GreenNet, NonBlockingSocketsStayNonBlocking) {
  Alarm alarm(20);
  tendril::LibevHub hub;
  ssize_t r = 0;
  int err = 0;
  tendril::run(hub, [&] {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    char c;
    r = ::recv(sv[0], &c, 1, 0);
    err = errno;
    ::close(sv[0]);
    ::close(sv[1]);
  });
  EXPECT_EQ(r, -1);
  EXPECT_EQ(err, EAGAIN);
}

// Off any greenlet (a plain thread), a blocking recv blocks the thread until data comes, and
// SO_RCVTIMEO ends it with EAGAIN, as libc's would.
TEST(GreenNet, OffAGreenletCallsBlockTheThreadAsLibcs) {
  Alarm alarm(20);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  std::thread writer([&] {
    std::this_thread::sleep_for(50ms);
    ::send(sv[1], "ping", 4, 0);
  });
  char buf[8];
  EXPECT_EQ(::recv(sv[0], buf, 4, MSG_WAITALL), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  writer.join();
  timeval tv{0, 100'000};
  ASSERT_EQ(::setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(::recv(sv[0], buf, 1, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 90ms);
  ::close(sv[0]);
  ::close(sv[1]);
}

// A blocking send of more than the socket buffers hold waits while the reader drains it, and
// sends every byte, in order.
TEST(GreenNet, BlockingSendSendsEverything) {
  Alarm alarm(20);
  tendril::LibevHub hub;
  const std::size_t total = 8 << 20;
  std::size_t received = 0;
  bool in_order = true;
  ssize_t sent = 0;
  tendril::run(hub, [&] {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    auto reader = tendril::spawn("reader", [&] {
      std::vector<unsigned char> buf(65536);
      ssize_t n;
      while ((n = ::read(sv[1], buf.data(), buf.size())) > 0) {
        for (ssize_t i = 0; i < n; ++i) in_order &= buf[i] == ((received + i) & 0xff);
        received += static_cast<std::size_t>(n);
      }
    });
    std::vector<unsigned char> data(total);
    for (std::size_t i = 0; i < total; ++i) data[i] = i & 0xff;
    sent = ::write(sv[0], data.data(), data.size());
    ::close(sv[0]);
    reader->join();
    ::close(sv[1]);
  });
  EXPECT_EQ(sent, static_cast<ssize_t>(total));
  EXPECT_EQ(received, total);
  EXPECT_TRUE(in_order);
}

// A blocking connect to a port nobody listens on fails with ECONNREFUSED.
TEST(GreenNet, BlockingConnectReportsRefusal) {
  Alarm alarm(20);
  tendril::LibevHub hub;
  int r = 0;
  int err = 0;
  tendril::run(hub, [&] {
    std::uint16_t port = 0;
    ::close(listen_local(&port));  // a port that was free a moment ago
    r = connect_local(port);
    err = errno;
  });
  EXPECT_EQ(r, -1);
  EXPECT_EQ(err, ECONNREFUSED);
}

// Closing a socket that another greenlet waits on ends that wait with EBADF (gevent's
// cancel_wait), instead of leaving it blocked forever.
TEST(GreenNet, ClosingASocketEndsAnotherGreenletsWaitWithEbadf) {
  Alarm alarm(20);
  tendril::LibevHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    auto waiter = tendril::spawn("waiter", [&] {
      char c;
      const ssize_t r = ::recv(sv[0], &c, 1, 0);
      log.push_back("recv " + std::to_string(r) + " " + (r < 0 ? std::strerror(errno) : ""));
    });
    tendril::sleep(0s);
    log.push_back("closing");
    ::close(sv[0]);
    waiter->join();
    ::close(sv[1]);
  });
  EXPECT_EQ(log, (std::vector<std::string>{"closing", "recv -1 Bad file descriptor"}));
}

// A greenlet killed while it waits in recv unwinds out of it (GreenletExit), and the socket is
// as it was: another greenlet reads the data that comes next.
TEST(GreenNet, AGreenletKilledInRecvUnwindsAndTheSocketStaysUsable) {
  Alarm alarm(20);
  tendril::LibevHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    auto victim = tendril::spawn("victim", [&] {
      try {
        char c;
        ::recv(sv[0], &c, 1, 0);
        log.push_back("victim read");
      } catch (const tendril::GreenletExit&) {
        log.push_back("victim unwound");
        throw;
      }
    });
    tendril::sleep(0s);
    victim->kill();
    ::send(sv[1], "x", 1, 0);
    char c = 0;
    const ssize_t n = ::recv(sv[0], &c, 1, 0);
    log.push_back("main read " + std::to_string(n) + " " + c);
    ::close(sv[0]);
    ::close(sv[1]);
  });
  EXPECT_EQ(log, (std::vector<std::string>{"victim unwound", "main read 1 x"}));
}

// poll and select with a timeout wait cooperatively (here on a pipe, which the layer did not
// make): the writer runs while they wait; with nothing coming they time out.
TEST(GreenNet, PollAndSelectWaitCooperatively) {
  Alarm alarm(20);
  tendril::LibevHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    auto writer = tendril::spawn("writer", [&] {
      log.push_back("writer runs");
      ::write(p[1], "a", 1);
    });
    pollfd fds{p[0], POLLIN, 0};
    const int r = ::poll(&fds, 1, 5000);
    log.push_back("poll " + std::to_string(r) + (fds.revents & POLLIN ? " readable" : ""));
    char c;
    ::read(p[0], &c, 1);
    fd_set set;
    FD_ZERO(&set);
    FD_SET(p[0], &set);
    timeval tv{0, 50'000};
    const auto start = std::chrono::steady_clock::now();
    const int s = ::select(p[0] + 1, &set, nullptr, nullptr, &tv);
    const bool waited = std::chrono::steady_clock::now() - start >= 45ms;
    log.push_back("select " + std::to_string(s) + (FD_ISSET(p[0], &set) ? " set" : " clear") +
                  (waited ? " after the timeout" : " early"));
    writer->join();
    ::close(p[0]);
    ::close(p[1]);
  });
  EXPECT_EQ(log, (std::vector<std::string>{"writer runs", "poll 1 readable",
                                           "select 0 clear after the timeout"}));
}

// getaddrinfo on a greenlet runs on the hub's pool and gives libc's answer.
TEST(GreenNet, GetaddrinfoResolvesOnThePool) {
  Alarm alarm(20);
  tendril::LibevHub hub;
  int rc = -1;
  std::string host;
  tendril::run(hub, [&] {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    rc = ::getaddrinfo("127.0.0.1", "80", &hints, &res);
    if (rc == 0) {
      char buf[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf,
                  sizeof buf);
      host = buf;
      ::freeaddrinfo(res);
    }
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(host, "127.0.0.1");
}

// On SimHub, a socket call that must wait on a descriptor off its simulated network (here a
// socketpair) blocks the hub in libc, and says so once per call.
TEST(GreenNet, SimHubWarnsOnceThatARealSocketBlocksTheHub) {
  Alarm alarm(20);
  tendril::SimHub hub;
  std::vector<ssize_t> results;
  ::testing::internal::CaptureStderr();
  tendril::run(hub, [&] {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    timeval tv{0, 10'000};
    ::setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    results.push_back(::recv(sv[0], &c, 1, 0));
    results.push_back(::recv(sv[0], &c, 1, 0));
    ::close(sv[0]);
    ::close(sv[1]);
  });
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(results, (std::vector<ssize_t>{-1, -1}));
  EXPECT_EQ(err,
            "tendril::green: recv() on a greenlet of SimHub blocks the whole hub: SimHub waits "
            "only on its simulated network, which has the TCP sockets made on it, not this "
            "descriptor. (Said once per call.)\n");
}

// poll and select with no descriptor are the old idioms for a sleep: on a greenlet they sleep
// cooperatively, in virtual time on SimHub (exactly, and no wall time to speak of).
TEST(GreenNet, PollAndSelectWithNoDescriptorSleepInVirtualTime) {
  Alarm alarm(20);
  tendril::SimHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    auto other = tendril::spawn("other", [&] { log.push_back("other runs meanwhile"); });
    const std::int64_t t0 = hub.now_ns();
    log.push_back("poll " + std::to_string(::poll(nullptr, 0, 250)));
    const std::int64_t t1 = hub.now_ns();
    timeval tv{2, 0};
    const int selected = ::select(0, nullptr, nullptr, nullptr, &tv);
    log.push_back("select " + std::to_string(selected) + ", time left " +
                  std::to_string(tv.tv_sec) + "." + std::to_string(tv.tv_usec));
    const std::int64_t t2 = hub.now_ns();
    log.push_back("slept " + std::to_string(t1 - t0) + " then " + std::to_string(t2 - t1) + " ns");
    other->join();
  });
  EXPECT_EQ(log,
            (std::vector<std::string>{"other runs meanwhile", "poll 0", "select 0, time left 0.0",
                                      "slept 250000000 then 2000000000 ns"}));
}
