// SPDX-License-Identifier: Apache-2.0
// preload_probe: a tendril program in blocking style, not linked with tendril::green. It calls
// POSIX usleep(argv[1] microseconds, default 3 s) in a greenlet on a SimHub and prints the
// virtual time after it: run with LD_PRELOAD=libtendril_green.so the sleep is virtual (and takes
// no wall time); without, it is libc's and the virtual clock stays at 0. With a second argument,
// "socket", it then listens on 127.0.0.1 (port 0), connects to itself, sends "ping" and reads it
// back with POSIX calls, and prints the port: preloaded, the sockets are the simulated network's,
// whose first free port is 40000.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tendril/sim.hpp"

namespace {

void socket_round_trip() {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::printf("listen: %s\n", std::strerror(errno));
    return;
  }
  const int client = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::printf("connect: %s\n", std::strerror(errno));
    return;
  }
  const int conn = ::accept(listener, nullptr, nullptr);
  char buf[4] = {};
  const bool ok = ::send(client, "ping", 4, 0) == 4 && ::recv(conn, buf, 4, MSG_WAITALL) == 4;
  std::printf("port %d, %s\n", ntohs(a.sin_port), ok ? std::string(buf, 4).c_str() : "failed");
  for (int fd : {conn, client, listener}) ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  const long us = argc > 1 ? std::atol(argv[1]) : 3'000'000;
  const bool sockets = argc > 2 && std::strcmp(argv[2], "socket") == 0;
  tendril::SimHub hub;
  tendril::run(hub, [us, sockets] {
    ::usleep(static_cast<useconds_t>(us));
    const long long ns = tendril::current_hub().now_ns();
    std::printf("virtual %lld.%09lld s after usleep(%ld)\n", ns / 1'000'000'000, ns % 1'000'000'000,
                us);
    if (sockets) socket_round_trip();
  });
  return 0;
}
