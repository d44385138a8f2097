// SPDX-License-Identifier: Apache-2.0
// slowloris [SLOW] [SECONDS]: normal clients' requests per second against a StreamServer on the
// real hub (LibevHub), without and with a slowloris attack, measured in one run. Loopback only.
//
// A child process runs the server: the default concurrency (1000) and a handler that reads one
// HTTP/1.0 request up to its blank line, answers it and closes, with no explicit timeout (so the
// stream's own, the server's idle_timeout, applies). The parent runs, on its own LibevHub, 64
// normal clients that make requests back to back for SECONDS (default 5; each request with a 5 s
// timeout, as the probe that found the issue), and SLOW attackers (default 2000) that connect,
// send one byte a second and never finish their request; an attacker whose connection was closed
// notices at its next tick and connects again, as slowloris tools do. Three rows, each with a
// fresh server: no attack; the attack against the default Options; the attack against
// evict_when_full = false (the idle timeout alone, as eventlet's socket_timeout), which is what
// the server did before eviction. Prints each row's normal requests per second and failures, and
// each attacked row's ratio to the first. About 3 x (SECONDS + 3) seconds.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include "tendril/net.hpp"
#include "tendril/realio.hpp"

using namespace std::chrono_literals;

namespace {

const char* const request = "GET / HTTP/1.0\r\n\r\n";
const std::string response = "HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nHello World\n";

// closed() tells whether the server closed c (EOF or a reset), without waiting.
bool closed(tendril::Stream& c) {
  try {
    return c.recv(1, 0s).empty();
  } catch (const tendril::Timeout&) {
    return false;
  } catch (const std::system_error&) {
    return true;
  }
}

void handler(tendril::Stream& s) {
  std::string got;
  while (got.find("\r\n\r\n") == std::string::npos) {
    if (got.size() > 65536) return;
    const std::string part = s.recv(4096);
    if (part.empty()) return;
    got += part;
  }
  s.sendall(response);
}

// serve() is the child: it runs the server and writes its port to `out`, then serves until
// killed.
[[noreturn]] void serve(bool evict, int out) {
  tendril::LibevHub hub;
  try {
    tendril::run(hub, [&] {
      tendril::StreamServer server(tendril::listen({"127.0.0.1", 0}, 4096), handler,
                                   {.evict_when_full = evict});
      const std::uint16_t port = server.address().port;
      if (::write(out, &port, sizeof port) != sizeof port) std::_Exit(1);
      server.serve_forever();
    });
  } catch (const std::exception& e) {
    std::cerr << "slowloris: server: " << e.what() << "\n";
  }
  std::_Exit(1);
}

struct Row {
  long ok = 0;
  long failed = 0;
  long slow_connected = 0;
  double seconds = 0;
};

// measure() starts a server, then (with `slow` attackers, once they are connected) runs the
// normal clients for `seconds`.
Row measure(bool evict, int slow, int seconds) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  const pid_t child = ::fork();
  if (child < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (child == 0) {
    ::close(fds[0]);
    serve(evict, fds[1]);
  }
  ::close(fds[1]);
  std::uint16_t port = 0;
  if (::read(fds[0], &port, sizeof port) != sizeof port) {
    throw std::runtime_error("the server did not start");
  }
  ::close(fds[0]);
  const tendril::Address at{"127.0.0.1", port};
  Row row;
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    bool attacking = true;
    std::vector<tendril::Ref<tendril::Greenlet>> attackers;
    for (int i = 0; i < slow; ++i) {
      attackers.push_back(tendril::spawn([&] {
        while (attacking) {
          try {
            tendril::Stream c = tendril::connect(at, 5s);
            ++row.slow_connected;
            for (;;) {
              c.sendall("G", 1s);
              tendril::sleep(1s);
              if (!attacking) return;
              if (closed(c)) break;  // closed by the server: connect again
            }
          } catch (const tendril::Timeout&) {
            tendril::sleep(1s);  // the connect or the byte timed out: try again a second later
          } catch (const std::system_error&) {
            tendril::sleep(1s);  // refused or reset: try again a second later
          }
        }
      }));
    }
    if (slow > 0) tendril::sleep(2s);  // the attack is in place
    const tendril::Duration start = tendril::now();
    const tendril::Duration end = start + std::chrono::seconds(seconds);
    std::vector<tendril::Ref<tendril::Greenlet>> clients;
    for (int i = 0; i < 64; ++i) {
      clients.push_back(tendril::spawn([&] {
        while (tendril::now() < end) {
          try {
            tendril::Stream c = tendril::connect(at, 5s);
            c.sendall(request, 5s);
            std::string got;
            tendril::TimeoutScope scope(5s);
            for (std::string part; !(part = c.recv(4096)).empty();) got += part;
            ++(got == response ? row.ok : row.failed);
          } catch (const tendril::Timeout&) {
            ++row.failed;
          } catch (const std::system_error&) {
            ++row.failed;
          }
        }
      }));
    }
    tendril::joinall(clients);
    row.seconds = std::chrono::duration<double>(tendril::now() - start).count();
    attacking = false;
    for (auto& a : attackers) a->kill(nullptr, false);
    tendril::joinall(attackers);
  });
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  const int slow = argc > 1 ? std::atoi(argv[1]) : 2000;
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 5;
  if (argc > 3 || slow < 0 || slow > 10000 || seconds < 1 || seconds > 60) {
    std::cerr << "usage: slowloris [SLOW (0-10000, default 2000)] [SECONDS (1-60, default 5)]\n";
    return 2;
  }
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < static_cast<rlim_t>(slow) + 1000) {
    std::cerr << "slowloris: the limit on open files (" << rl.rlim_cur << ") is too low for "
              << slow << " attackers; raise ulimit -Hn\n";
    return 3;
  }
  struct Case {
    const char* name;
    bool evict;
    int slow;
  };
  const Case cases[] = {{"no attack", true, 0},
                        {"attack, default Options", true, slow},
                        {"attack, evict_when_full = false", false, slow}};
  std::printf("normal clients (64, back to back, 5 s timeout) vs %d slow clients, %d s each\n",
              slow, seconds);
  double baseline = 0;
  for (const Case& c : cases) {
    const Row r = measure(c.evict, c.slow, seconds);
    const double rate = static_cast<double>(r.ok) / r.seconds;
    if (c.slow == 0) baseline = rate;
    std::printf("%-34s %9.0f req/s  %6ld failed  %6ld slow connects", c.name, rate, r.failed,
                r.slow_connected);
    if (c.slow != 0 && baseline > 0) std::printf("  ratio %.3f", rate / baseline);
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}
