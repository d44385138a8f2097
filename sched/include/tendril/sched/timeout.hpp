// SPDX-License-Identifier: Apache-2.0
// tendril/sched/timeout.hpp: TimeoutScope (gevent's `with Timeout(s):`) and with_timeout().
#pragma once

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "tendril/sched/errors.hpp"
#include "tendril/sched/greenlet.hpp"
#include "tendril/sched/hub.hpp"

namespace tendril {

// TimeoutScope raises an exception in the greenlet that made it if that greenlet is still inside
// the scope, blocked, when `duration` of hub time has passed: a tendril::Timeout whose source()
// is this scope, or the exception given. Code that does not block is never interrupted, and a
// timeout due in the same loop turn as a sleep's end fires after it (gevent's priority -1).
// Scopes nest; leaving the scope cancels it. Create it on a greenlet's stack.
class TimeoutScope {
 public:
  // TimeoutScope(duration) starts the timer; with no duration it never fires (gevent's
  // Timeout(None)). Throws UsageError outside a greenlet or for a negative duration.
  explicit TimeoutScope(std::optional<Duration> duration, std::exception_ptr exception = nullptr);
  ~TimeoutScope();
  TimeoutScope(const TimeoutScope&) = delete;
  TimeoutScope& operator=(const TimeoutScope&) = delete;

  // cancel() disarms the timer; a no-op once fired or cancelled.
  void cancel() noexcept;
  // pending() is true while armed and not yet fired.
  bool pending() const noexcept { return timer_ != 0; }
  // fired() is true once the timer has raised its exception.
  bool fired() const noexcept { return fired_; }
  // raised(e) tells whether e was raised by this scope (gevent's `except Timeout as t: if t is
  // not timeout: raise`).
  bool raised(const Timeout& e) const noexcept { return e.source() == this; }

 private:
  friend Alternative identify(const Callback& cb) noexcept;
  friend Action action_of(const Callback& cb) noexcept;
  static void fire_cb(Callback& cb, bool run);
  Hub* hub_;
  Greenlet* greenlet_;
  std::exception_ptr exception_;
  TimerId timer_ = 0;
  bool fired_ = false;
};

// with_timeout(d, f) runs f() under a TimeoutScope of d and returns its result; the Timeout
// propagates if it fires.
template <class F>
auto with_timeout(Duration d, F&& f) -> decltype(f()) {
  TimeoutScope scope(d);
  return std::forward<F>(f)();
}

// with_timeout(d, f, fallback) returns fallback instead when this scope's Timeout fires (gevent's
// timeout_value); other Timeouts propagate.
template <class F, class T>
auto with_timeout(Duration d, F&& f, T fallback) -> std::decay_t<decltype(f())> {
  TimeoutScope scope(d);
  try {
    return std::forward<F>(f)();
  } catch (const Timeout& e) {
    if (!scope.raised(e)) throw;
    return fallback;
  }
}

}  // namespace tendril
