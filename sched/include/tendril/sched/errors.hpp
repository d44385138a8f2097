// SPDX-License-Identifier: Apache-2.0
// tendril/sched/errors.hpp: the exceptions tendril throws, following gevent's model.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>

namespace tendril {

// GreenletExit is thrown into a greenlet by kill() at its blocking point, so that destructors and
// catch blocks run. Like Python's GreenletExit (a BaseException) it does not derive from
// std::exception: a `catch (const std::exception&)` in user code does not swallow a kill. A
// greenlet that ends with GreenletExit counts as successful, as in gevent.
class GreenletExit {
 public:
  GreenletExit() = default;
  virtual ~GreenletExit() = default;
  // what() names the exception, for reports.
  virtual const char* what() const noexcept { return "GreenletExit"; }
};

// SystemExit ends the whole program from any greenlet (Python's SystemExit): a greenlet that dies
// of it is not reported as failed; the hub throws it into the main greenlet at once, where main
// is blocked, so main sees it at its blocking call and, unless it catches it, run() throws it to
// its caller, which can exit with code() (gevent's handle_system_error). Raised by main itself,
// it leaves run() like any exception. Like GreenletExit it does not derive from std::exception.
class SystemExit {
 public:
  explicit SystemExit(int code = 0) noexcept : code_(code) {}
  virtual ~SystemExit() = default;
  // code() is the exit status the program should end with.
  int code() const noexcept { return code_; }
  // what() names the exception, for reports.
  virtual const char* what() const noexcept { return "SystemExit"; }

 private:
  int code_;
};

// Timeout is thrown by a blocking call whose timeout expired (for example Task<T>::get(timeout)).
// Like gevent's Timeout it does not derive from std::exception, so generic handlers let it pass.
class Timeout {
 public:
  Timeout() = default;
  // Timeout(source) is raised by the TimeoutScope at `source` (see TimeoutScope::raised).
  explicit Timeout(const void* source) : source_(source) {}
  virtual ~Timeout() = default;
  // what() names the exception, for reports.
  virtual const char* what() const noexcept { return "Timeout"; }
  // source() is the TimeoutScope that raised this, or null for a blocking call's own timeout.
  const void* source() const noexcept { return source_; }

 private:
  const void* source_ = nullptr;
};

// LoopExit is thrown into the main greenlet when it blocks and the hub has nothing left that could
// ever wake it (gevent's LoopExit).
class LoopExit : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Deadlock is the LoopExit tendril raises: its message names every blocked greenlet and what it
// waits on, and the hub's time.
class Deadlock : public LoopExit {
 public:
  using LoopExit::LoopExit;
};

// UsageError reports API misuse: blocking outside a greenlet, spawning with no running hub,
// joining yourself, a negative duration. The message names the call and what was wrong.
class UsageError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// StackLimitError is the std::system_error a spawn meets when no stack can be had: the kernel
// refused the mapping, or the guard page (vm.max_map_count allows about 32k guarded stacks). The
// greenlet fails with it. The default report prints the first one in a run in full, with what to
// do, and counts the rest in one line when the run ends.
class StackLimitError : public std::system_error {
 public:
  using std::system_error::system_error;
};

// NoValue is thrown by Task<T>::get() when the task ended successfully without producing a value:
// it was killed with GreenletExit (gevent would return the GreenletExit instance as the value).
class NoValue : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// HubError reports that the hub itself stopped the run, for example when a simulated run exceeds
// its step limit.
class HubError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Livelock is the HubError a SimHub raises when greenlets keep yielding (sleep(0)) for
// SimOptions::livelock_steps steps in a row while nothing else happens: no timer fires, so virtual
// time stands still, and no greenlet starts, dies or is woken by anything but its own yield. The
// message names the spinning greenlets.
class Livelock : public HubError {
 public:
  using HubError::HubError;
};

// describe_exception() renders an exception as "type: message" for reports; never throws.
std::string describe_exception(const std::exception_ptr& e) noexcept;

}  // namespace tendril
