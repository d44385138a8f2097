// SPDX-License-Identifier: Apache-2.0
// green_echo: gevent's socket-server tutorial with nothing but POSIX calls. The echo handler and
// the accept loop use socket/bind/listen/accept/recv/send/close only, one greenlet per
// connection, on a LibevHub; tendril::green (linked in) makes those calls cooperative. The
// clients are the seed's: plain threads with blocking sockets, each sending its lines and reading
// each echo back (off any greenlet the same calls block their thread, as libc's do).
//   green_echo [clients=100] [lines=20]
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

}  // namespace

int main(int argc, char** argv) {
  const int clients = argc > 1 ? positive(argv[1], "clients") : 100;
  const int lines = argc > 2 ? positive(argv[2], "lines") : 20;
  ::alarm(120);  // a hang ends the program (and a test) instead of stalling it
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listener, 1024) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::fprintf(stderr, "green_echo: listen on 127.0.0.1: %s\n", std::strerror(errno));
    return 1;
  }
  const std::uint16_t port = ntohs(a.sin_port);

  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] { wrong += client(port, i, lines); });
  }
  int served = 0;
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
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
  });
  for (std::thread& t : threads) t.join();
  ::close(listener);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  std::printf("served %d clients on one thread, %d lines echoed, %d wrong, in %lld ms\n", served,
              clients * lines - wrong.load(), wrong.load(), static_cast<long long>(ms));
  return served == clients && wrong == 0 ? 0 : 1;
}
