// SPDX-License-Identifier: Apache-2.0
// green_echo: gevent's socket-server tutorial with nothing but POSIX calls. The echo handler and
// the accept loop use socket/bind/listen/accept/recv/send/close only, one greenlet per
// connection, on a LibevHub; tendril::green (linked in) makes those calls cooperative. The
// clients are the seed's: plain threads with blocking sockets, each sending its lines and reading
// each echo back (off any greenlet the same calls block their thread, as libc's do).
// With --sim the same server and clients, unchanged, run as greenlets of one SimHub: their
// sockets are on the simulated network, in virtual time (the clients are greenlets there, since a
// simulated socket lives on its hub's thread).
//   green_echo [--sim] [clients=100] [lines=20]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tendril/realio.hpp"
#include "tendril/sim.hpp"

namespace {

// handle() echoes one connection until the client closes it: POSIX only.
void handle(int conn) {
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(conn, buf, sizeof buf, 0)) > 0) {
    if (::send(conn, buf, static_cast<size_t>(n), 0) != n) break;
  }
  ::close(conn);
}

// client() connects, sends `lines` lines one at a time and checks each echo; returns the number
// of lines that came back wrong (or were never sent).
int client(std::uint16_t port, int id, int lines) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::fprintf(stderr, "green_echo: client %d: connect: %s\n", id, std::strerror(errno));
    ::close(fd);
    return lines;
  }
  int wrong = 0;
  for (int j = 0; j < lines; ++j) {
    const std::string line = "client " + std::to_string(id) + " line " + std::to_string(j) + "\n";
    std::string back(line.size(), '\0');
    if (::send(fd, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size()) ||
        ::recv(fd, back.data(), back.size(), MSG_WAITALL) != static_cast<ssize_t>(back.size()) ||
        back != line) {
      ++wrong;
    }
  }
  ::close(fd);
  return wrong;
}

int positive(const char* arg, const char* what) {
  char* end = nullptr;
  const long v = std::strtol(arg, &end, 10);
  if (*arg == '\0' || *end != '\0' || v <= 0 || v > 10000) {
    std::fprintf(stderr, "green_echo: %s must be a number from 1 to 10000, got '%s'\n", what, arg);
    std::exit(2);
  }
  return static_cast<int>(v);
}

// listen_local() opens the listening socket on 127.0.0.1 (port 0: a free one) and returns it
// with its port, or -1.
int listen_local(std::uint16_t* port) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(*port);
  socklen_t len = sizeof a;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listener, 1024) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::fprintf(stderr, "green_echo: listen on 127.0.0.1: %s\n", std::strerror(errno));
    ::close(listener);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return listener;
}

// accept_loop() accepts `clients` connections and echoes each in its own greenlet; returns how
// many it accepted.
int accept_loop(int listener, int clients) {
  int served = 0;
  std::vector<tendril::Ref<tendril::Greenlet>> handlers;
  for (int i = 0; i < clients; ++i) {
    const int conn = ::accept(listener, nullptr, nullptr);  // waits: the other greenlets run
    if (conn < 0) {
      std::fprintf(stderr, "green_echo: accept: %s\n", std::strerror(errno));
      break;
    }
    handlers.push_back(tendril::spawn([conn] { handle(conn); }));
    ++served;
  }
  tendril::joinall(handlers);
  return served;
}

// echo_simulated() runs the server and the clients as greenlets of one SimHub.
int echo_simulated(int clients, int lines) {
  int served = 0;
  int wrong = 0;
  std::int64_t took_ns = 0;
  tendril::SimOptions options;
  options.net.min_latency_us = 50;  // each delivery takes 50 us of virtual time
  options.net.max_latency_us = 50;
  tendril::SimHub hub(options);
  tendril::run(hub, [&] {
    std::uint16_t port = 7;
    const int listener = listen_local(&port);
    if (listener < 0) return;
    auto server = tendril::spawn("server", [&] { served = accept_loop(listener, clients); });
    std::vector<tendril::Ref<tendril::Greenlet>> greenlets;
    for (int i = 0; i < clients; ++i) {
      greenlets.push_back(tendril::spawn("client", [&, i] { wrong += client(port, i, lines); }));
    }
    tendril::joinall(greenlets);
    server->join();
    ::close(listener);
    took_ns = hub.now_ns();
  });
  std::printf(
      "served %d clients on one SimHub, %d lines echoed, %d wrong, in %.6f s of virtual time\n",
      served, clients * lines - wrong, wrong, static_cast<double>(took_ns) / 1e9);
  return served == clients && wrong == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const bool simulated = argc > 1 && std::string(argv[1]) == "--sim";
  if (simulated) {
    --argc;
    ++argv;
  }
  const int clients = argc > 1 ? positive(argv[1], "clients") : 100;
  const int lines = argc > 2 ? positive(argv[2], "lines") : 20;
  ::alarm(120);  // a hang ends the program (and a test) instead of stalling it
  if (simulated) return echo_simulated(clients, lines);
  std::uint16_t port = 0;
  const int listener = listen_local(&port);
  if (listener < 0) return 1;

  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] { wrong += client(port, i, lines); });
  }
  int served = 0;
  tendril::LibevHub hub;
  tendril::run(hub, [&] { served = accept_loop(listener, clients); });
  for (std::thread& t : threads) t.join();
  ::close(listener);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  std::printf("served %d clients on one thread, %d lines echoed, %d wrong, in %lld ms\n", served,
              clients * lines - wrong.load(), wrong.load(), static_cast<long long>(ms));
  return served == clients && wrong == 0 ? 0 : 1;
}
