// SPDX-License-Identifier: Apache-2.0
// tendril/sched/event.hpp: Event and AsyncResult<T> (gevent.event).
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "tendril/sched/errors.hpp"
#include "tendril/sched/linkable.hpp"

namespace tendril {

// Event is a flag greenlets wait on. set() wakes every waiter, in the order they started
// waiting, through one queued callback; it never switches. Use it from greenlets of one hub.
class Event : public Linkable {
 public:
  // Event(name) makes a cleared event; the name labels it in reports.
  explicit Event(std::string name = {}) : Linkable("Event", true) { set_name(std::move(name)); }

  // set() sets the flag and queues the wakeup of every waiter; never switches.
  void set();
  // clear() resets the flag. Waiters already being woken still wake, and their wait() is true.
  void clear() noexcept { flag_ = false; }
  // is_set() / ready() tell whether the flag is set.
  bool is_set() const noexcept { return flag_; }
  bool ready() const noexcept override { return flag_; }
  // wait() blocks until the flag is set or timeout passes. Returns true if woken by set() (even
  // if cleared again since), the flag itself when it was already set, false on timeout. Call it
  // from a greenlet; throws UsageError otherwise or for a negative timeout.
  bool wait(std::optional<Duration> timeout = std::nullopt);

 private:
  bool flag_ = false;
};

namespace detail {
// AsyncResultBase holds the non-template part of AsyncResult<T>.
class AsyncResultBase : public Linkable {
 public:
  // ready() is true once a value or an exception is set.
  bool ready() const noexcept override { return done_; }
  // successful() is true once a value is set.
  bool successful() const noexcept { return done_ && !error_; }
  // exception() is the exception set, or null.
  std::exception_ptr exception() const noexcept { return error_; }
  // set_exception() stores e (not null) and wakes every waiter; never switches. Later calls
  // replace the result, as in gevent.
  void set_exception(std::exception_ptr e);
  // wait() blocks until ready or timeout passes; returns ready().
  bool wait(std::optional<Duration> timeout = std::nullopt);

 protected:
  explicit AsyncResultBase(std::string name) : Linkable("AsyncResult", true) {
    set_name(std::move(name));
  }
  // mark_set() records success and queues the wakeup.
  void mark_set();
  // wait_for_get() blocks for get(): throws Timeout if not ready in time, rethrows the exception.
  void wait_for_get(std::optional<Duration> timeout);

 private:
  bool done_ = false;
  std::exception_ptr error_;
};
}  // namespace detail

// AsyncResult<T> is a one-shot value or exception that greenlets can wait for (gevent's
// AsyncResult); T may be void.
template <class T>
class AsyncResult : public detail::AsyncResultBase {
 public:
  explicit AsyncResult(std::string name = {}) : AsyncResultBase(std::move(name)) {}
  // set() stores the value and wakes every waiter; never switches.
  void set(T value) {
    value_.emplace(std::move(value));
    mark_set();
  }
  // get() waits until ready (at most timeout, else throws Timeout) and returns the value or
  // rethrows the exception.
  T& get(std::optional<Duration> timeout = std::nullopt) {
    wait_for_get(timeout);
    return *value_;
  }
  // get_nowait() is get() that throws Timeout at once instead of blocking; it never switches.
  T& get_nowait() {
    if (!ready()) throw Timeout();
    return get();
  }
  // value() is the value once successful, else empty.
  const std::optional<T>& value() const noexcept { return value_; }

 private:
  std::optional<T> value_;
};

// AsyncResult<void> carries only success or an exception.
template <>
class AsyncResult<void> : public detail::AsyncResultBase {
 public:
  explicit AsyncResult(std::string name = {}) : AsyncResultBase(std::move(name)) {}
  // set() marks success and wakes every waiter; never switches.
  void set() { mark_set(); }
  // get() waits until ready (at most timeout, else throws Timeout); rethrows the exception.
  void get(std::optional<Duration> timeout = std::nullopt) { wait_for_get(timeout); }
};

}  // namespace tendril
