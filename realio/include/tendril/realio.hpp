// tendril/realio.hpp: LibevHub, the real hub: libev's loop, wall-clock (monotonic) time. The
// same greenlet code runs on it and on SimHub; pick one in one line:
//
//   tendril::LibevHub hub;          // or: tendril::SimHub hub;
//   tendril::run(hub, [] { ... });
//
// This first version drives the ready queue and timers (sleep, timeouts, spawn_later) the way
// gevent drives them on libev; sockets, signals and cross-thread wakeups come next.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tendril/sched.hpp"

namespace tendril {

// LibevOptions configures a LibevHub.
struct LibevOptions {
  StackOptions stack;
  // seed feeds random_below() (not recorded: real runs are not replayable anyway).
  std::uint64_t seed = 1;
};

// LibevHub runs greenlets on a libev loop of its own (ev_loop_new), on the thread that calls
// run(). Callbacks run until the queue is empty, then libev fires due timers (normal priority
// before low, as gevent's Timeout at priority -1) and waits for the next one.
class LibevHub final : public Hub {
 public:
  explicit LibevHub(LibevOptions options = {});
  ~LibevHub() override;

  // now_ns() is libev's loop time (cached per loop iteration, as gevent's), in nanoseconds since
  // the hub was made; monotonic.
  std::int64_t now_ns() const override;
  TimerId start_timer(std::int64_t deadline_ns, Callback cb,
                      TimerPriority priority = TimerPriority::normal) override;
  void cancel_timer(TimerId id) noexcept override;
  std::uint32_t choose(std::uint32_t n) override;
  std::string position() const override;
  // pending_timers() counts armed timers.
  std::size_t pending_timers() const noexcept;

 protected:
  void run_loop() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tendril
