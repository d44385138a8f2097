// SPDX-License-Identifier: Apache-2.0
// tendril/realio.hpp: LibevHub, the real hub: libev's loop, wall-clock (monotonic) time. The
// same greenlet code runs on it and on SimHub; pick one in one line:
//
//   tendril::LibevHub hub;          // or: tendril::SimHub hub;
//   tendril::run(hub, [] { ... });
//
// It drives the ready queue and timers (sleep, timeouts, spawn_later) the way gevent drives them
// on libev, takes cross-thread posts (ev_async), runs blocking calls on a small thread pool, and
// handles signals, and serves TCP (tendril/net.hpp) on non-blocking sockets.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tendril/net.hpp"
#include "tendril/sched.hpp"

namespace tendril {

// LibevOptions configures a LibevHub.
struct LibevOptions {
  StackOptions stack;
  // seed feeds random_below() (not recorded: real runs are not replayable anyway).
  std::uint64_t seed = 1;
  // threads is the most threads the pool that runs blocking_call() work (name lookups included)
  // may hold; 0 means 1. A thread starts when a call finds none idle and stays until the hub is
  // destroyed. Such calls mostly wait (a DNS server, a disk, a blocking C library), so the pool
  // is large: up to 64 greenlets resolving names at once take the time of one lookup. (Tokio's
  // blocking pool starts threads the same way, up to 512; gevent's holds 10, libuv's 4.)
  unsigned threads = 64;
};

// LibevHub runs greenlets on a libev loop of its own (ev_loop_new), on the thread that calls
// run(). Callbacks run until the queue is empty, then libev fires due timers (normal priority
// before low, as gevent's Timeout at priority -1) and waits for the next event.
class LibevHub final : public Hub {
 public:
  explicit LibevHub(LibevOptions options = {});
  ~LibevHub() override;

  // now_ns() is libev's loop time, refreshed at every read (as gevent refreshes it before
  // arming a timer), in nanoseconds since the hub was made; monotonic. Timers fire in deadline
  // order, equal deadlines in arming order.
  std::int64_t now_ns() const override;
  TimerId start_timer(std::int64_t deadline_ns, Callback cb,
                      TimerPriority priority = TimerPriority::normal) override;
  void cancel_timer(TimerId id) noexcept override;
  std::uint32_t choose(std::uint32_t n) override;
  const char* hub_name() const noexcept override { return "LibevHub"; }
  std::string position() const override;
  void post_threadsafe(std::function<void()> fn) override;
  void run_blocking(const std::function<void()>& work) override;
  // net() is TCP over non-blocking sockets and libev (tendril/net.hpp).
  net::Backend& net() override;
  // wait_fd() blocks the calling greenlet until fd is readable (EV_READ) or writable (EV_WRITE),
  // or deadline_ns passes (returns false). For backends; call it from a greenlet.
  bool wait_fd(int fd, int events, std::optional<std::int64_t> deadline_ns, const char* reason);
  // wait_fds() is wait_fd() on several (fd, events) pairs at once: it returns true when any of
  // them is ready (which one: ask poll), false when deadline_ns passes. With no pairs it waits
  // for the deadline alone. For backends; call it from a greenlet.
  bool wait_fds(const std::vector<std::pair<int, int>>& fds,
                std::optional<std::int64_t> deadline_ns, const char* reason);

  // signal_handler() calls handler on the hub (as a callback: it must not block; it may spawn
  // or kill) each time signum arrives (gevent.signal_handler). Like gevent's, the watcher does
  // not keep the loop alive. Throws UsageError for an invalid signal number.
  void signal_handler(int signum, std::function<void()> handler);
  // pending_timers() counts armed timers.
  std::size_t pending_timers() const noexcept;

  // KeepAlive says "another thread will post_threadsafe() to this hub": while one lives, a
  // greenlet waiting for that post (with nothing else pending) is not a Deadlock; the loop
  // waits for the post. Make it on the hub's thread (in a greenlet, or before run()); drop it on
  // any thread (the hub takes the release in at its next loop turn). It must not outlive the hub.
  class KeepAlive {
   public:
    KeepAlive() = default;
    KeepAlive(KeepAlive&& other) noexcept : hub_(std::exchange(other.hub_, nullptr)) {}
    KeepAlive& operator=(KeepAlive&& other) noexcept;
    KeepAlive(const KeepAlive&) = delete;
    KeepAlive& operator=(const KeepAlive&) = delete;
    ~KeepAlive();

   private:
    friend class LibevHub;
    explicit KeepAlive(LibevHub* hub) : hub_(hub) {}
    LibevHub* hub_ = nullptr;
  };
  // keep_alive() returns a KeepAlive for this hub; call it on the hub's thread.
  KeepAlive keep_alive();
  // posts_pending() counts posts made and not yet run (any thread may call it).
  std::size_t posts_pending() const;

 protected:
  void run_loop() override;

 private:
  void release_keep_alive() noexcept;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tendril
