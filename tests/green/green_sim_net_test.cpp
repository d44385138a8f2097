// SPDX-License-Identifier: Apache-2.0
// Monkey patching (tendril::green) on SimHub: plain POSIX socket code runs on the simulated
// network, in virtual time, with its latencies and faults, and its interleavings explore and
// replay. Every test arms alarm(): a call that reached the kernel's socket instead would block the
// only thread, and SIGALRM ends the test instead.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tendril/explore.hpp"
#include "tendril/net.hpp"
#include "tendril/sim.hpp"

using namespace std::chrono_literals;

namespace {

struct Alarm {
  explicit Alarm(unsigned seconds) { ::alarm(seconds); }
  ~Alarm() { ::alarm(0); }
};

sockaddr_in ipv4(const char* host, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, host, &a.sin_addr);
  return a;
}

// listen_on() is socket, bind and listen on host:port (port 0: any); returns the descriptor and
// stores the port.
int listen_on(const char* host, std::uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = ipv4(host, *port);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  EXPECT_EQ(::listen(fd, 128), 0) << std::strerror(errno);
  socklen_t len = sizeof a;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

// connect_to() is a blocking connect; -1 with errno on failure.
int connect_to(const char* host, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = ipv4(host, port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

std::string name_of(const sockaddr_in& a) {
  char text[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
  return std::string(text) + ":" + std::to_string(ntohs(a.sin_port));
}

std::string errno_name(int err) {
  switch (err) {
    case EAGAIN:
      return "EAGAIN";
    case ECONNREFUSED:
      return "ECONNREFUSED";
    case ECONNRESET:
      return "ECONNRESET";
    case EPIPE:
      return "EPIPE";
    case ENOTCONN:
      return "ENOTCONN";
    case EINVAL:
      return "EINVAL";
    case EADDRINUSE:
      return "EADDRINUSE";
    case EISCONN:
      return "EISCONN";
    case EBADF:
      return "EBADF";
    case EOPNOTSUPP:
      return "EOPNOTSUPP";
    case EIO:
      return "EIO";
    default:
      return std::to_string(err);
  }
}

// result() renders a call's outcome: its value, or -1 and the errno's name.
std::string result(long r) {
  if (r >= 0) return std::to_string(r);
  return "-1 " + errno_name(errno);
}

// echo() serves one connection with POSIX calls only until the client closes it.
void echo(int conn) {
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(conn, buf, sizeof buf, 0)) > 0) ::send(conn, buf, static_cast<size_t>(n), 0);
  ::close(conn);
}

}  // namespace

// The seed's socket server, POSIX only, with 100 POSIX clients, all greenlets of one SimHub: every
// line comes back, in virtual time (the Fifo policy takes each latency's minimum, 0 here, so
// the whole exchange takes no virtual time), and every connection is closed at the end.
TEST(GreenSimNet, PosixEchoServerServes100ClientsOnTheSimulatedNetwork) {
  Alarm alarm(30);
  tendril::SimOptions options;
  options.net.max_latency_us = 0;
  tendril::SimHub hub(options);
  int right = 0;
  int served = 0;
  std::int64_t finished_ns = -1;
  tendril::run(hub, [&] {
    std::uint16_t port = 7000;
    const int listener = listen_on("0.0.0.0", &port);
    EXPECT_EQ(port, 7000);
    auto server = tendril::spawn("server", [&] {
      std::vector<tendril::Ref<tendril::Greenlet>> handlers;
      for (int i = 0; i < 100; ++i) {
        const int conn = ::accept(listener, nullptr, nullptr);
        ASSERT_GE(conn, 0) << std::strerror(errno);
        handlers.push_back(tendril::spawn("handler", [conn] { echo(conn); }));
        ++served;
      }
      tendril::joinall(handlers);
    });
    std::vector<tendril::Ref<tendril::Greenlet>> clients;
    for (int i = 0; i < 100; ++i) {
      clients.push_back(tendril::spawn("client", [&, i] {
        const int fd = connect_to("127.0.0.1", 7000);
        ASSERT_GE(fd, 0) << std::strerror(errno);
        bool ok = true;
        for (int j = 0; j < 20; ++j) {
          const std::string line = "client " + std::to_string(i) + " line " + std::to_string(j);
          std::string back(line.size(), '\0');
          ok = ok && ::send(fd, line.data(), line.size(), 0) == static_cast<ssize_t>(line.size());
          ok = ok && ::recv(fd, back.data(), back.size(), MSG_WAITALL) ==
                         static_cast<ssize_t>(back.size());
          ok = ok && back == line;
        }
        ::close(fd);
        if (ok) ++right;
      }));
    }
    tendril::joinall(clients);
    server->join();
    ::close(listener);
    finished_ns = hub.now_ns();
  });
  EXPECT_EQ(right, 100);
  EXPECT_EQ(served, 100);
  EXPECT_EQ(finished_ns, 0);
  EXPECT_EQ(hub.sim_net().open_connections(), 0u);
}

// Latencies apply to POSIX sockets as to tendril's streams: with 1 ms each way, a request and
// its reply take exactly 2 ms of virtual time, and a blocking recv waits for them.
TEST(GreenSimNet, LatencyAndTimeoutsAreVirtual) {
  Alarm alarm(30);
  tendril::SimOptions options;
  options.net.min_latency_us = 1000;
  options.net.max_latency_us = 1000;
  tendril::SimHub hub(options);
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    std::uint16_t port = 0;
    const int listener = listen_on("127.0.0.1", &port);
    auto server = tendril::spawn("server", [&] { echo(::accept(listener, nullptr, nullptr)); });
    const int fd = connect_to("127.0.0.1", port);
    ASSERT_GE(fd, 0);
    const std::int64_t t0 = hub.now_ns();
    ::send(fd, "ping", 4, 0);
    char buf[8];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    log.push_back("recv " + std::to_string(n) + " after " + std::to_string(hub.now_ns() - t0));
    // SO_RCVTIMEO bounds a recv in virtual time: EAGAIN after exactly 250 ms.
    timeval tv{0, 250'000};
    ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    const std::int64_t t1 = hub.now_ns();
    const std::string r = result(::recv(fd, buf, sizeof buf, 0));
    log.push_back("recv " + r + " after " + std::to_string(hub.now_ns() - t1));
    // poll with a timeout waits in virtual time too, and sees the echo arrive.
    pollfd p{fd, POLLIN, 0};
    const std::int64_t t2 = hub.now_ns();
    const int none = ::poll(&p, 1, 100);
    log.push_back("poll " + std::to_string(none) + " after " + std::to_string(hub.now_ns() - t2));
    ::send(fd, "again", 5, 0);
    const std::int64_t t3 = hub.now_ns();
    const int one = ::poll(&p, 1, -1);
    log.push_back("poll " + std::to_string(one) + " revents " + std::to_string(p.revents) +
                  " after " + std::to_string(hub.now_ns() - t3));
    // A real descriptor in the same poll is looked at: a pipe with a byte in it is ready now.
    int pipefd[2];
    ASSERT_EQ(::pipe(pipefd), 0);
    ASSERT_EQ(::write(pipefd[1], "x", 1), 1);
    pollfd two[2] = {{fd, 0, 0}, {pipefd[0], POLLIN, 0}};  // nothing asked of the socket
    const std::int64_t t4 = hub.now_ns();
    const int mixed = ::poll(two, 2, 1000);
    log.push_back("mixed poll " + std::to_string(mixed) + " revents " +
                  std::to_string(two[0].revents) + "," + std::to_string(two[1].revents) +
                  " after " + std::to_string(hub.now_ns() - t4));
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    ::close(fd);
    server->join();
    ::close(listener);
  });
  EXPECT_EQ(log,
            (std::vector<std::string>{
                "recv 4 after 2000000", "recv -1 EAGAIN after 250000000", "poll 0 after 100000000",
                "poll 1 revents " + std::to_string(POLLIN) + " after 2000000",
                "mixed poll 1 revents 0," + std::to_string(POLLIN) + " after 0"}));
}

// Errors are Linux's errno values.
TEST(GreenSimNet, ErrorsAreLinuxs) {
  Alarm alarm(30);
  tendril::SimHub hub;
  std::vector<std::string> log;
  ::testing::internal::CaptureStderr();
  tendril::run(hub, [&] {
    auto say = [&](const std::string& what, long r) { log.push_back(what + " " + result(r)); };
    say("connect to nobody", connect_to("127.0.0.1", 9));
    std::uint16_t port = 0;
    const int listener = listen_on("127.0.0.1", &port);
    const int again = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in same = ipv4("127.0.0.1", port);
    say("bind a port in use", ::bind(again, reinterpret_cast<sockaddr*>(&same), sizeof same));
    say("bind twice", ::bind(listener, reinterpret_cast<sockaddr*>(&same), sizeof same));
    char c = 0;
    say("recv unconnected", ::recv(again, &c, 1, 0));
    say("peer of unconnected", ::getpeername(again, nullptr, nullptr));
    say("dup", ::dup(again));
    ::close(again);
    const int fd = connect_to("127.0.0.1", port);
    const int conn = ::accept(listener, nullptr, nullptr);
    say("connect twice", ::connect(fd, reinterpret_cast<sockaddr*>(&same), sizeof same));
    say("recv nothing yet, MSG_DONTWAIT", ::recv(fd, &c, 1, MSG_DONTWAIT));
    ::fcntl(listener, F_SETFL, O_NONBLOCK);
    say("accept nothing, non-blocking", ::accept(listener, nullptr, nullptr));
    ::shutdown(fd, SHUT_WR);
    say("send after shutdown", ::send(fd, "x", 1, MSG_NOSIGNAL));
    say("server reads EOF", ::recv(conn, &c, 1, 0));
    ::fcntl(listener, F_SETFL, 0);
    const int fd2 = connect_to("127.0.0.1", port);
    const int conn2 = ::accept(listener, nullptr, nullptr);
    hub.sim_net().reset({}, {});
    say("recv after a reset", ::recv(conn2, &c, 1, 0));
    say("send after a reset", ::send(fd2, "x", 1, MSG_NOSIGNAL));
    for (int d : {fd, conn, fd2, conn2, listener}) ::close(d);
  });
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "tendril::green: dup() of a socket of SimHub's simulated network fails with "
            "EOPNOTSUPP: it has one descriptor per socket. (Said once.)\n");
  EXPECT_EQ(
      log, (std::vector<std::string>{
               "connect to nobody -1 ECONNREFUSED", "bind a port in use -1 EADDRINUSE",
               "bind twice -1 EINVAL", "recv unconnected -1 ENOTCONN",
               "peer of unconnected -1 ENOTCONN", "dup -1 EOPNOTSUPP", "connect twice -1 EISCONN",
               "recv nothing yet, MSG_DONTWAIT -1 EAGAIN", "accept nothing, non-blocking -1 EAGAIN",
               "send after shutdown -1 EPIPE", "server reads EOF 0",
               "recv after a reset -1 ECONNRESET", "send after a reset -1 ECONNRESET"}));
}

// Names resolve through the simulated network's table: a POSIX client finds a server started
// with tendril::listen under a name the test added; an unknown name fails as a real failed
// lookup does; addresses read back are the table's.
TEST(GreenSimNet, NamesResolveThroughTheTable) {
  Alarm alarm(30);
  tendril::SimHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    hub.sim_net().add_host("db.test", "10.0.0.7");
    tendril::Listener listener = tendril::listen({"db.test", 5432});
    log.push_back("tendril listens on " + listener.address().to_string());
    auto server = tendril::spawn("server", [&] {
      tendril::Stream s = listener.accept();
      s.sendall("hello " + s.peer().to_string());
    });
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    ASSERT_EQ(::getaddrinfo("db.test", "5432", &hints, &res), 0);
    const int fd = ::socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    ASSERT_EQ(::connect(fd, res->ai_addr, res->ai_addrlen), 0) << std::strerror(errno);
    ::freeaddrinfo(res);
    sockaddr_in peer{};
    sockaddr_in self{};
    socklen_t len = sizeof peer;
    ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len);
    len = sizeof self;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&self), &len);
    log.push_back("POSIX client " + name_of(self) + " -> " + name_of(peer));
    char buf[64];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_WAITALL);
    log.push_back(std::string(buf, static_cast<std::size_t>(std::max<ssize_t>(n, 0))));
    ::close(fd);
    server->join();
    log.push_back("unknown name: " +
                  std::string(::gai_strerror(::getaddrinfo("nowhere.test", "80", &hints, &res))));
    const hostent* h = ::gethostbyname("nowhere.test");
    log.push_back("gethostbyname: " + std::string(h == nullptr ? "null" : "found") +
                  (h_errno == HOST_NOT_FOUND ? ", HOST_NOT_FOUND" : ", other"));
    h = ::gethostbyname("db.test");
    char text[INET_ADDRSTRLEN] = "?";
    if (h != nullptr) ::inet_ntop(AF_INET, h->h_addr_list[0], text, sizeof text);
    log.push_back(std::string("gethostbyname db.test: ") + text);
  });
  EXPECT_EQ(log,
            (std::vector<std::string>{
                "tendril listens on 10.0.0.7:5432", "POSIX client 192.0.2.1:40000 -> 10.0.0.7:5432",
                "hello 192.0.2.1:40000", "unknown name: Name or service not known",
                "gethostbyname: null, HOST_NOT_FOUND", "gethostbyname db.test: 10.0.0.7"}));
}

// A greenlet killed while blocked in recv unwinds out of it (GreenletExit); the socket stays
// open and usable, and closing it afterwards leaves no connection behind.
TEST(GreenSimNet, AGreenletKilledInRecvUnwinds) {
  Alarm alarm(30);
  tendril::SimHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    std::uint16_t port = 0;
    const int listener = listen_on("127.0.0.1", &port);
    const int fd = connect_to("127.0.0.1", port);
    const int conn = ::accept(listener, nullptr, nullptr);
    auto reader = tendril::spawn("reader", [&] {
      struct Unwound {
        std::vector<std::string>& log;
        ~Unwound() { log.push_back("reader unwound"); }
      } unwound{log};
      char c;
      ::recv(fd, &c, 1, 0);
      log.push_back("recv returned");
    });
    tendril::sleep(1s);
    reader->kill();
    ::send(conn, "late", 4, 0);
    char buf[8];
    const ssize_t n = ::recv(fd, buf, 4, MSG_WAITALL);
    log.push_back("then recv " + std::to_string(n) + " " + std::string(buf, 4));
    ::close(fd);
    ::close(conn);
    ::close(listener);
  });
  EXPECT_EQ(log, (std::vector<std::string>{"reader unwound", "then recv 4 late"}));
  EXPECT_EQ(hub.sim_net().open_connections(), 0u);
}

// A simulated socket used where no SimHub runs fails with EBADF and says why, once. Sockets a run
// leaves open (a listener with a connection in its backlog, a connected pair with bytes in
// flight) close silently with their hub.
TEST(GreenSimNet, ASimulatedSocketOffItsHubFailsWithEbadf) {
  Alarm alarm(30);
  auto hub = std::make_unique<tendril::SimHub>();
  int fd = -1;
  std::vector<int> left_open;
  tendril::run(*hub, [&] {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    std::uint16_t port = 0;
    const int listener = listen_on("127.0.0.1", &port);
    const int a = connect_to("127.0.0.1", port);
    const int b = connect_to("127.0.0.1", port);
    const int conn = ::accept(listener, nullptr, nullptr);
    ::send(a, "in flight", 9, 0);
    ::send(conn, "unread", 6, 0);
    left_open = {listener, a, b, conn};
  });
  EXPECT_EQ(hub->sim_net().open_connections(), 2u);
  hub.reset();
  ::testing::internal::CaptureStderr();
  char c;
  const std::string first = result(::recv(fd, &c, 1, 0));
  const std::string second = result(::send(fd, &c, 1, 0));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(first, "-1 EBADF");
  EXPECT_EQ(second, "-1 EBADF");
  EXPECT_EQ(err,
            "tendril::green: recv() on a socket of SimHub's simulated network, called where no "
            "SimHub runs (another thread, or after the run): it fails with EBADF. (Said once.)\n");
  EXPECT_EQ(::close(fd), 0);
  for (int d : left_open) EXPECT_EQ(::close(d), 0);
}

namespace {

// A key-value server with a lost update: each client reads the counter, then writes it back plus
// one, over POSIX sockets. Whether both increments land depends on how the requests interleave,
// which the network's latencies decide.
void counter_scenario(int* final_value) {
  int counter = 0;
  std::uint16_t port = 6379;
  const int listener = listen_on("0.0.0.0", &port);
  auto server = tendril::spawn("server", [&] {
    std::vector<tendril::Ref<tendril::Greenlet>> handlers;
    for (int i = 0; i < 2; ++i) {
      const int conn = ::accept(listener, nullptr, nullptr);
      handlers.push_back(tendril::spawn("handler", [&, conn] {
        char op;
        while (::recv(conn, &op, 1, 0) == 1) {
          if (op == 'g') {
            const char v = static_cast<char>('0' + counter);
            ::send(conn, &v, 1, 0);
          } else {
            char v;
            ::recv(conn, &v, 1, MSG_WAITALL);
            counter = v - '0';
          }
        }
        ::close(conn);
      }));
    }
    tendril::joinall(handlers);
  });
  std::vector<tendril::Ref<tendril::Greenlet>> clients;
  for (int i = 0; i < 2; ++i) {
    clients.push_back(tendril::spawn("client", [] {
      const int fd = connect_to("127.0.0.1", 6379);
      char v;
      ::send(fd, "g", 1, 0);
      ::recv(fd, &v, 1, 0);
      const char set[2] = {'s', static_cast<char>(v + 1)};
      ::send(fd, set, 2, 0);
      ::close(fd);
    }));
  }
  tendril::joinall(clients);
  server->join();
  ::close(listener);
  *final_value = counter;
}

}  // namespace

// Exploration varies the POSIX program's interleavings through the network's latencies, finds the
// lost update, and the schedule file it saves replays it exactly.
TEST(GreenSimNet, ExplorationFindsALostUpdateAndItsScheduleReplays) {
  Alarm alarm(60);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("tendril-green-sim-" + std::to_string(::getpid()));
  tendril::ExploreOptions options;
  options.test = "GreenSimNet.LostUpdate";
  options.policy = "random";
  options.schedules = 200;
  options.jobs = 1;
  options.artifacts = dir.string();
  options.progress = "off";
  options.sim.net.max_latency_us = 1000;
  auto body = [] {
    int value = 0;
    counter_scenario(&value);
    if (value != 2) throw std::runtime_error("lost update: counter " + std::to_string(value));
  };
  const tendril::ExploreResult found = tendril::explore(options, body);
  ASSERT_EQ(found.failures, 1u) << found.summary;
  EXPECT_NE(found.failure.find("std::runtime_error: lost update: counter 1"), std::string::npos)
      << found.failure;
  tendril::ExploreOptions again = options;
  again.replay = found.schedule_file;
  const tendril::ExploreResult replayed = tendril::explore(again, body);
  ASSERT_EQ(replayed.failures, 1u) << replayed.summary;
  EXPECT_EQ(replayed.failure, found.failure);
  std::filesystem::remove_all(dir);
}

namespace {

// Refuses is a policy that answers 0 until `armed`, then throws (as a replay that runs out does).
struct Refuses : tendril::Chooser {
  bool* armed;
  explicit Refuses(bool* a) : armed(a) {}
  std::uint32_t choose(const tendril::ChoicePoint&) override {
    if (*armed) throw std::runtime_error("the policy refused a choice");
    return 0;
  }
};

}  // namespace

// libc declares shutdown() noexcept: a choice that throws inside it (a replay that runs out while
// the FIN's latency is drawn) ends the run with that exception instead of terminating.
TEST(GreenSimNet, AnExceptionInANoexceptCallEndsTheRun) {
  Alarm alarm(30);
  bool armed = false;
  tendril::SimOptions options;
  options.net.max_latency_us = 100;  // every delivery draws its latency
  tendril::SimHub hub(std::make_unique<Refuses>(&armed), options);
  std::vector<std::string> log;
  try {
    tendril::run(hub, [&] {
      std::uint16_t port = 0;
      const int listener = listen_on("127.0.0.1", &port);
      const int fd = connect_to("127.0.0.1", port);
      armed = true;
      log.push_back("shutdown " + result(::shutdown(fd, SHUT_WR)));
      tendril::sleep(1s);
      log.push_back("not reached");
      ::close(listener);
    });
  } catch (const std::runtime_error& e) {
    log.push_back(std::string("run threw: ") + e.what());
  }
  EXPECT_EQ(
      log, (std::vector<std::string>{"shutdown -1 EIO", "run threw: the policy refused a choice"}));
}

// Closing a socket other greenlets wait on (in recv, in accept) ends their waits with EBADF, as
// on LibevHub (gevent's cancel_wait); the socket goes once they have left.
TEST(GreenSimNet, ClosingASocketEndsOtherGreenletsWaitsWithEbadf) {
  Alarm alarm(30);
  tendril::SimHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    std::uint16_t port = 0;
    const int listener = listen_on("127.0.0.1", &port);
    const int fd = connect_to("127.0.0.1", port);
    const int conn = ::accept(listener, nullptr, nullptr);
    auto reader = tendril::spawn("reader", [&] {
      char c;
      log.push_back("recv " + result(::recv(fd, &c, 1, 0)));
    });
    auto acceptor = tendril::spawn("acceptor", [&] {
      log.push_back("accept " + result(::accept(listener, nullptr, nullptr)));
    });
    tendril::sleep(1s);
    ::close(fd);
    ::close(listener);
    tendril::joinall(std::vector<tendril::Ref<tendril::Greenlet>>{reader, acceptor});
    char c;
    log.push_back("peer reads " + result(::recv(conn, &c, 1, 0)));
    ::close(conn);
  });
  EXPECT_EQ(log, (std::vector<std::string>{"recv -1 EBADF", "accept -1 EBADF", "peer reads 0"}));
  EXPECT_EQ(hub.sim_net().open_connections(), 0u);
}
