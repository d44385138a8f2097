// SPDX-License-Identifier: Apache-2.0
// tendril/sched/raw.hpp: RawGreenlet, the plain symmetric coroutine of the `greenlet` library
// (gr1.switch_to() / gr2.switch_to()), with no hub, no scheduling and no timers.
#pragma once

#include <boost/context/fiber.hpp>
#include <cstddef>
#include <exception>
#include <functional>

#include "tendril/sched/detail/switch.hpp"

namespace tendril {

// RawGreenlet runs a function on its own stack and transfers control only when asked: switch_to()
// jumps straight into it. When the function returns, control goes to its parent: the raw greenlet
// (or the thread's own stack) that was running when it was created, as in the greenlet library.
// Raw greenlets belong to one thread and must not call blocking hub functions (sleep, join); a
// parent must outlive the raw greenlets it created (the greenlet library keeps it alive instead).
// Destroying an unfinished raw greenlet throws GreenletExit into it, as the greenlet library does,
// so its destructors run; the destroyer resumes when it has finished.
class RawGreenlet {
 public:
  // RawGreenlet(fn) prepares fn to run on a fresh stack of stack_size_bytes; nothing runs yet.
  explicit RawGreenlet(std::function<void()> fn, std::size_t stack_size_bytes = 256 * 1024);
  ~RawGreenlet();
  RawGreenlet(const RawGreenlet&) = delete;
  RawGreenlet& operator=(const RawGreenlet&) = delete;

  // switch_to() suspends the running context and resumes this greenlet (starting it the first
  // time); it returns when something switches back to the caller. Throws UsageError if this
  // greenlet is dead. An exception escaping fn propagates into the parent's switch_to().
  void switch_to();
  // dead() is true once fn has returned or thrown.
  bool dead() const noexcept { return dead_; }
  // current() is the raw greenlet running on this thread, or nullptr on the thread's own stack.
  static RawGreenlet* current() noexcept;

 private:
  static boost::context::fiber& slot_of(RawGreenlet* g) noexcept;
  std::function<void()> fn_;
  std::size_t stack_size_bytes_;
  RawGreenlet* parent_;
  boost::context::fiber ctx_;
  boost::context::stack_context stack_{};
  bool started_ = false;
  bool exit_pending_ = false;  // GreenletExit is due at the greenlet's switch point
  bool dead_ = false;
  std::exception_ptr error_;    // escaped from fn_, rethrown in the parent
  void* tsan_fiber_ = nullptr;  // ThreadSanitizer's context for it (TSan builds only)
  detail::EhState eh_;          // its C++ exception state while it is switched out
};

}  // namespace tendril
