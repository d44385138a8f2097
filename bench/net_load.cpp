// SPDX-License-Identifier: Apache-2.0
// net_load: the load generator of bench/net.sh, on raw epoll (one thread), so that the client is
// not the bottleneck and the same client drives every server. Loopback only; every run is bounded
// in count and time. Prints one JSON object on stdout.
//
//   net_load http PORT REQUESTS CONCURRENCY TIMEOUT_S
//     HTTP/1.0 GETs to 127.0.0.1:PORT, one per connection, at most CONCURRENCY connections at
//     once (as `ab -n REQUESTS -c CONCURRENCY`). A request succeeds when the server answers
//     "HTTP/1.x 200" with a body and closes. Prints time_s, ok, failed and the failures by kind;
//     requests still running at TIMEOUT_S count as failed ("timeout").
//   net_load echo PORT CONNECTIONS SECONDS MESSAGE_BYTES
//     CONNECTIONS connections each send a MESSAGE_BYTES message, wait for all of it to come back
//     (checked byte for byte) and repeat, for SECONDS. Prints requests, time_s and requests_per_s.
//
// The soft limit on open files is raised to the hard limit; if that is still too low for the
// connections asked for, it exits with status 3 and says so.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "net_load: %s\n", what.c_str());
  std::exit(1);
}

long parse(const char* text, const char* name, long low, long high) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || v < low || v > high) {
    die(std::string(name) + " must be an integer in [" + std::to_string(low) + ", " +
        std::to_string(high) + "], got '" + text + "'");
  }
  return v;
}

// raise_fd_limit() lifts the soft RLIMIT_NOFILE to the hard one and checks that `needed`
// descriptors fit.
void raise_fd_limit(long needed) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit: " + std::string(strerror(errno)));
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_max != RLIM_INFINITY && static_cast<long>(rl.rlim_max) < needed + 64) {
    std::fprintf(stderr,
                 "net_load: the hard limit on open files (ulimit -Hn) is %ld, too low for %ld "
                 "connections; raise it (e.g. in /etc/security/limits.conf) to run this load\n",
                 static_cast<long>(rl.rlim_max), needed);
    std::exit(3);
  }
}

sockaddr_in loopback(long port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- http ----

struct HttpConn {
  int fd = -1;
  bool connected = false;
  std::size_t request_sent = 0;
  std::string response;
};

int run_http(long port, long requests, long concurrency, long timeout_s) {
  raise_fd_limit(concurrency);
  const sockaddr_in sa = loopback(port);
  const std::string request = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: net_load\r\n\r\n";
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1: " + std::string(strerror(errno)));
  std::vector<HttpConn> conns(static_cast<std::size_t>(concurrency));
  std::vector<std::size_t> free_slots;
  for (std::size_t i = conns.size(); i-- > 0;) free_slots.push_back(i);
  long started = 0, ok = 0, failed = 0, in_flight = 0;
  std::map<std::string, long> failures;
  auto fail = [&](std::size_t slot, const std::string& kind) {
    ::close(conns[slot].fd);
    conns[slot] = HttpConn{};
    free_slots.push_back(slot);
    --in_flight;
    ++failed;
    ++failures[kind];
  };
  auto start_one = [&]() {
    const std::size_t slot = free_slots.back();
    free_slots.pop_back();
    ++started;
    ++in_flight;
    HttpConn& c = conns[slot];
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      conns[slot] = HttpConn{};
      free_slots.push_back(slot);
      --in_flight;
      ++failed;
      ++failures[std::string("socket: ") + strerror(errno)];
      return;
    }
    if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 &&
        errno != EINPROGRESS) {
      fail(slot, std::string("connect: ") + strerror(errno));
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = slot;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  };
  const auto t0 = Clock::now();
  std::vector<epoll_event> events(1024);
  char buf[4096];
  while (ok + failed < requests) {
    // Open new connections in batches, between rounds of events, so that a server that accepts
    // as fast as we connect is not penalised by a client that only connects.
    for (int batch = 0; batch < 256 && started < requests && in_flight < concurrency; ++batch) {
      start_one();
    }
    if (seconds_since(t0) > static_cast<double>(timeout_s)) break;
    const bool more_to_start = started < requests && in_flight < concurrency;
    const int n =
        ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), more_to_start ? 0 : 100);
    if (n < 0 && errno != EINTR) die("epoll_wait: " + std::string(strerror(errno)));
    for (int i = 0; i < n; ++i) {
      const std::size_t slot = events[i].data.u64;
      HttpConn& c = conns[slot];
      if (!c.connected) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          fail(slot, std::string("connect: ") + strerror(err));
          continue;
        }
        c.connected = true;
      }
      if (c.request_sent < request.size()) {
        const ssize_t sent = ::send(c.fd, request.data() + c.request_sent,
                                    request.size() - c.request_sent, MSG_NOSIGNAL);
        if (sent < 0) {
          if (errno != EAGAIN) fail(slot, std::string("send: ") + strerror(errno));
          continue;
        }
        c.request_sent += static_cast<std::size_t>(sent);
        if (c.request_sent == request.size()) {
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u64 = slot;
          ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        }
        continue;
      }
      for (;;) {
        const ssize_t got = ::recv(c.fd, buf, sizeof buf, 0);
        if (got > 0) {
          c.response.append(buf, static_cast<std::size_t>(got));
          continue;
        }
        if (got < 0 && errno == EAGAIN) break;
        if (got < 0) {
          fail(slot, std::string("recv: ") + strerror(errno));
          break;
        }
        // EOF: HTTP/1.0 without keep-alive ends the response by closing.
        const std::size_t body = c.response.find("\r\n\r\n");
        const bool good = c.response.compare(0, 12, "HTTP/1.0 200") == 0 ||
                          c.response.compare(0, 12, "HTTP/1.1 200") == 0;
        if (!good || body == std::string::npos || body + 4 == c.response.size()) {
          fail(slot, c.response.empty() ? "closed without a response" : "bad response");
          break;
        }
        ::close(c.fd);
        conns[slot] = HttpConn{};
        free_slots.push_back(slot);
        --in_flight;
        ++ok;
        break;
      }
    }
  }
  const double elapsed = seconds_since(t0);
  // Whatever is still running at the deadline failed, and so did what never started.
  if (in_flight > 0) failures["timeout"] += in_flight;
  if (requests - started > 0) failures["not started (timeout)"] += requests - started;
  failed += in_flight + (requests - started);
  for (auto& c : conns) {
    if (c.fd >= 0) ::close(c.fd);
  }
  ::close(ep);
  std::printf("{\"time_s\": %.6f, \"ok\": %ld, \"failed\": %ld, \"failures\": {", elapsed, ok,
              failed);
  const char* sep = "";
  for (const auto& [kind, count] : failures) {
    std::printf("%s\"%s\": %ld", sep, kind.c_str(), count);
    sep = ", ";
  }
  std::printf("}}\n");
  return 0;
}

// ---- echo ----

struct EchoConn {
  int fd = -1;
  std::size_t got = 0;
};

int run_echo(long port, long connections, long seconds, long message_bytes) {
  raise_fd_limit(connections);
  const sockaddr_in sa = loopback(port);
  std::string message(static_cast<std::size_t>(message_bytes), '\0');
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>('a' + i % 26);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1: " + std::string(strerror(errno)));
  std::vector<EchoConn> conns(static_cast<std::size_t>(connections));
  for (std::size_t i = 0; i < conns.size(); ++i) {
    // Blocking connects first (setup, not measured), then non-blocking round trips.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket: " + std::string(strerror(errno)));
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
      die("connect to 127.0.0.1:" + std::to_string(port) + ": " + strerror(errno));
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    conns[i].fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  auto send_message = [&](EchoConn& c) {
    // A small message fits the socket buffer: a short write would be a broken loopback.
    const ssize_t sent = ::send(c.fd, message.data(), message.size(), MSG_NOSIGNAL);
    if (sent != static_cast<ssize_t>(message.size())) die("short or failed send on loopback");
    c.got = 0;
  };
  const auto t0 = Clock::now();
  for (auto& c : conns) send_message(c);
  long requests = 0;
  std::vector<epoll_event> events(1024);
  std::vector<char> buf(static_cast<std::size_t>(message_bytes));
  const double limit = static_cast<double>(seconds);
  double elapsed = 0;
  while ((elapsed = seconds_since(t0)) < limit) {
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    if (n < 0 && errno != EINTR) die("epoll_wait: " + std::string(strerror(errno)));
    for (int i = 0; i < n; ++i) {
      EchoConn& c = conns[events[i].data.u64];
      const ssize_t got = ::recv(c.fd, buf.data(), message.size() - c.got, 0);
      if (got < 0 && errno == EAGAIN) continue;
      if (got <= 0) die("the echo server closed or reset a connection mid-run");
      if (std::memcmp(buf.data(), message.data() + c.got, static_cast<std::size_t>(got)) != 0) {
        die("the echo came back different from what was sent");
      }
      c.got += static_cast<std::size_t>(got);
      if (c.got == message.size()) {
        ++requests;
        send_message(c);
      }
    }
  }
  // Stop sending and collect the echoes still on their way, so that every connection ends with
  // a clean close rather than a reset (closing with unread bytes resets the connection).
  std::size_t outstanding = conns.size();
  const auto drain_start = Clock::now();
  while (outstanding > 0 && seconds_since(drain_start) < 2.0) {
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int i = 0; i < n; ++i) {
      EchoConn& c = conns[events[i].data.u64];
      if (c.got == message.size()) continue;
      const ssize_t got = ::recv(c.fd, buf.data(), message.size() - c.got, 0);
      if (got <= 0) continue;
      c.got += static_cast<std::size_t>(got);
      if (c.got == message.size()) --outstanding;
    }
  }
  for (auto& c : conns) ::close(c.fd);
  ::close(ep);
  std::printf("{\"requests\": %ld, \"time_s\": %.6f, \"requests_per_s\": %.1f}\n", requests,
              elapsed, static_cast<double>(requests) / elapsed);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "http" && argc == 6) {
    return run_http(parse(argv[2], "PORT", 1, 65535), parse(argv[3], "REQUESTS", 1, 10'000'000),
                    parse(argv[4], "CONCURRENCY", 1, 1'000'000),
                    parse(argv[5], "TIMEOUT_S", 1, 3600));
  }
  if (mode == "echo" && argc == 6) {
    return run_echo(parse(argv[2], "PORT", 1, 65535), parse(argv[3], "CONNECTIONS", 1, 100'000),
                    parse(argv[4], "SECONDS", 1, 600), parse(argv[5], "MESSAGE_BYTES", 1, 65536));
  }
  std::fprintf(stderr,
               "usage: net_load http PORT REQUESTS CONCURRENCY TIMEOUT_S\n"
               "       net_load echo PORT CONNECTIONS SECONDS MESSAGE_BYTES\n");
  return 2;
}
