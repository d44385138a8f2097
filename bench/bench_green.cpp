// SPDX-License-Identifier: Apache-2.0
// bench_green: what tendril::green (the libc interposer) costs. clock_gettime as libc runs it
// (its own symbol, found past the interposer), through the interposer off any hub (pass-through),
// and on a SimHub (the virtual clock); POSIX usleep(0) on a SimHub greenlet against
// tendril::sleep(0), both a sleep(0) ping-pong between two greenlets; recv that finds nothing, as
// libc runs it and through the interposer; and an echo round trip over TCP loopback on LibevHub,
// written with POSIX blocking calls against the same with tendril::Stream. Read the CPU time
// column for the SimHub rows: inside run() on a SimHub the benchmark library's own wall clock is
// the interposed one, which reads virtual time (standing still here).
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "tendril/net.hpp"
#include "tendril/realio.hpp"
#include "tendril/sim.hpp"

namespace {

using ClockGettime = int (*)(clockid_t, timespec*);

// libc's own clock_gettime: looked up in libc.so.6 itself, not through the global scope (where
// the interposer comes first).
ClockGettime libc_clock_gettime() {
  void* libc = ::dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  return libc != nullptr ? reinterpret_cast<ClockGettime>(::dlsym(libc, "clock_gettime")) : nullptr;
}

using Recv = ssize_t (*)(int, void*, size_t, int);

Recv libc_recv() {
  void* libc = ::dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  return libc != nullptr ? reinterpret_cast<Recv>(::dlsym(libc, "recv")) : nullptr;
}

// recv on an empty non-blocking socket (EAGAIN): a system call with nothing to copy, so the
// interposer's share shows. Through the interposer the socket is one the layer made (the
// program asked for non-blocking, so the call passes straight to libc).
template <bool interposed>
void BM_RecvEmpty(benchmark::State& state) {
  const Recv real = libc_recv();
  if (real == nullptr) {
    state.SkipWithError("libc.so.6 not found");
    return;
  }
  int sv[2];
  ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
  char c;
  for (auto _ : state) {
    const ssize_t r = interposed ? ::recv(sv[0], &c, 1, 0) : real(sv[0], &c, 1, 0);
    benchmark::DoNotOptimize(r);
  }
  ::close(sv[0]);
  ::close(sv[1]);
}
BENCHMARK(BM_RecvEmpty<false>)->Name("BM_RecvEmpty/libc");
BENCHMARK(BM_RecvEmpty<true>)->Name("BM_RecvEmpty/interposed");

constexpr std::size_t echo_bytes = 64;

// An echo round trip over TCP loopback between two greenlets of one LibevHub: a 64-byte message
// out and back. POSIX: plain blocking socket/accept/connect/send/recv (made cooperative by the
// interposer). Stream: tendril::listen/connect and Stream::sendall/recv.
void BM_EchoPosix(benchmark::State& state) {
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listener, 16);
    socklen_t len = sizeof a;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    auto server = tendril::spawn([&] {
      const int conn = ::accept(listener, nullptr, nullptr);
      const int one = 1;
      ::setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      char buf[echo_bytes];
      ssize_t n;
      while ((n = ::recv(conn, buf, sizeof buf, MSG_WAITALL)) > 0) ::send(conn, buf, n, 0);
      ::close(conn);
    });
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char msg[echo_bytes] = {};
    char back[echo_bytes];
    for (auto _ : state) {
      ::send(fd, msg, sizeof msg, 0);
      if (::recv(fd, back, sizeof back, MSG_WAITALL) != static_cast<ssize_t>(sizeof back)) {
        state.SkipWithError("short echo");
        break;
      }
    }
    ::close(fd);
    server->join();
    ::close(listener);
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EchoPosix)->Name("BM_EchoRoundTrip/posix_interposed")->UseRealTime();

void BM_EchoStream(benchmark::State& state) {
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    tendril::Listener listener = tendril::listen(tendril::Address{"127.0.0.1", 0});
    auto server = tendril::spawn([&] {
      tendril::Stream conn = listener.accept();
      std::string got;
      for (;;) {
        while (got.size() < echo_bytes) {
          const std::string part = conn.recv(echo_bytes - got.size());
          if (part.empty()) return;
          got += part;
        }
        conn.sendall(got);
        got.clear();
      }
    });
    tendril::Stream stream = tendril::connect(listener.address());
    const std::string msg(echo_bytes, '\0');
    for (auto _ : state) {
      stream.sendall(msg);
      std::size_t got = 0;
      while (got < echo_bytes) got += stream.recv(echo_bytes - got).size();
    }
    stream.close();
    server->join();
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EchoStream)->Name("BM_EchoRoundTrip/tendril_stream")->UseRealTime();

void BM_ClockGettime_Libc(benchmark::State& state) {
  const ClockGettime real = libc_clock_gettime();
  if (real == nullptr) {
    state.SkipWithError("libc.so.6 not found");
    return;
  }
  timespec t{};
  for (auto _ : state) {
    real(CLOCK_MONOTONIC, &t);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_ClockGettime_Libc);

void BM_ClockGettime_InterposedOffHub(benchmark::State& state) {
  timespec t{};
  for (auto _ : state) {
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_ClockGettime_InterposedOffHub);

void BM_ClockGettime_InterposedOnSimHub(benchmark::State& state) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    timespec t{};
    for (auto _ : state) {
      ::clock_gettime(CLOCK_MONOTONIC, &t);
      benchmark::DoNotOptimize(t);
    }
  });
}
BENCHMARK(BM_ClockGettime_InterposedOnSimHub);

// A sleep(0) ping-pong between two greenlets on a SimHub; items are sleeps.
template <bool posix>
void BM_Sleep0PingPong(benchmark::State& state) {
  tendril::SimOptions options;
  options.livelock_steps = 0;  // nothing but sleep(0), on purpose
  tendril::SimHub hub(options);
  tendril::run(hub, [&] {
    bool done = false;
    auto other = tendril::spawn([&] {
      while (!done) {
        if constexpr (posix) {
          ::usleep(0);
        } else {
          tendril::sleep(std::chrono::seconds(0));
        }
      }
    });
    for (auto _ : state) {
      if constexpr (posix) {
        ::usleep(0);
      } else {
        tendril::sleep(std::chrono::seconds(0));
      }
    }
    done = true;
    other->join();
  });
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_Sleep0PingPong<false>)->Name("BM_Sleep0PingPong/tendril_sleep");
BENCHMARK(BM_Sleep0PingPong<true>)->Name("BM_Sleep0PingPong/posix_usleep");

}  // namespace

BENCHMARK_MAIN();
