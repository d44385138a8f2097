// SPDX-License-Identifier: Apache-2.0
// tendril/sched/raw.hpp: RawGreenlet, the plain symmetric coroutine of the `greenlet` library
// (gr1.switch_to() / gr2.switch_to()), with no hub, no scheduling and no timers.
#pragma once

#include <any>
#include <boost/context/fiber.hpp>
#include <cstddef>
#include <exception>
#include <functional>

#include "tendril/sched/detail/switch.hpp"

namespace tendril {

// RawGreenlet runs a function on its own stack and transfers control only when asked: switch_to()
// jumps straight into it, passing a value. When the function returns, control and its return
// value go to its parent: the raw greenlet that was running when it was created (the thread's main
// greenlet on the thread's own stack), as in the greenlet library. Values travel as std::any: an
// empty std::any is the greenlet library's "no value" (a bare `g.switch()`, a function returning
// None). Raw greenlets belong to one thread and must not call blocking hub functions (sleep,
// join); a parent must outlive the raw greenlets whose parent it is (the greenlet library keeps it
// alive instead). Destroying an unfinished raw greenlet throws GreenletExit into it with the
// destroyer as its parent, as the greenlet library does, so its destructors run; the destroyer
// resumes when it has finished.
//
// GreenletExit as a value: a greenlet whose function ends by letting a GreenletExit escape (one
// thrown in by throw_in(), or its own) dies normally, and the switch that receives control returns
// a std::any holding the std::exception_ptr of that GreenletExit: the very exception_ptr passed to
// throw_in(), as the greenlet library returns the GreenletExit instance itself. Any other escaping
// exception propagates into the switch that receives control.
class RawGreenlet {
 public:
  // RawGreenlet(fn) prepares fn to run on a fresh stack of stack_size_bytes; nothing runs yet. The
  // value passed by the first switch_to() into it is dropped, and its end passes no value.
  explicit RawGreenlet(std::function<void()> fn, std::size_t stack_size_bytes = 256 * 1024);
  // RawGreenlet(fn) with a fn taking and returning std::any: the first switch_to(value) into it
  // calls fn(value), and fn's return value is what the switch that receives control returns.
  explicit RawGreenlet(std::function<std::any(std::any)> fn,
                       std::size_t stack_size_bytes = 256 * 1024);
  ~RawGreenlet();
  RawGreenlet(const RawGreenlet&) = delete;
  RawGreenlet& operator=(const RawGreenlet&) = delete;

  // switch_to(value) suspends the running greenlet and resumes this one (starting it the first
  // time, with value as fn's argument), where its own pending switch_to() returns value. It
  // returns the value passed by whatever switches back to the caller (or the return value of a
  // greenlet that finishes into it). If this greenlet is dead, the switch goes to its parent (or
  // the parent's parent, ...; the main greenlet never dies), as in the greenlet library; a switch
  // to the running greenlet returns value at once. An exception escaping a greenlet that finishes
  // into the caller (other than GreenletExit) is rethrown here. May be called from any context of
  // the thread that created this greenlet, including the thread's own stack.
  std::any switch_to(std::any value = {});
  // throw_in(error) switches into this greenlet as switch_to() does, but raises error at its
  // switch point instead of passing a value (the greenlet library's g.throw()); a null error
  // means GreenletExit. A greenlet that has not started dies without running fn (a GreenletExit
  // then becomes the value the caller gets back, any other error propagates to the caller). A dead
  // greenlet's parent gets the error instead; raising it in the running greenlet throws it here.
  // Returns like switch_to().
  std::any throw_in(std::exception_ptr error = nullptr);
  // dead() is true once fn has returned or thrown, or was never run because throw_in() killed it
  // first. The main greenlet is never dead.
  bool dead() const noexcept { return dead_; }
  // parent() is where control and fn's return value go when this greenlet finishes; nullptr for
  // the main greenlet.
  RawGreenlet* parent() const noexcept { return parent_; }
  // set_parent(p) makes p this greenlet's parent (the greenlet library's `g.parent = p`); it may
  // be called at any time, also while this greenlet runs. Throws UsageError ("cyclic parent
  // chain") if this greenlet is p or one of p's ancestors, or if this is a main greenlet ("cannot
  // set the parent of a main greenlet"); p must outlive this greenlet's use of it.
  void set_parent(RawGreenlet& p);
  // main() is this thread's main greenlet: the handle of the context that runs when no raw
  // greenlet does (the thread's own stack, or the hub greenlet that switched into raw ones). It
  // can be switched to, is never dead and has no parent; it is the default parent of raw greenlets
  // created there. Lives until the thread ends.
  static RawGreenlet& main() noexcept;
  // current() is the raw greenlet running on this thread, or &main() when none does; never
  // nullptr. It used to return nullptr on the thread's own stack; it returns the main handle now
  // because the greenlet library's getcurrent() returns the main greenlet there, and a handle can
  // be switched to and compared with parent() where nullptr cannot.
  static RawGreenlet* current() noexcept;

 private:
  struct MainTag {};
  explicit RawGreenlet(MainTag) noexcept;
  std::any transfer(std::any value, std::exception_ptr error);
  void jump_from(RawGreenlet* self);
  void create_fiber();
  RawGreenlet* run_and_pick_next();
  void record_stack_if_main(const void* bottom, std::size_t size) noexcept;

  std::function<std::any(std::any)> fn_;
  std::size_t stack_size_bytes_ = 0;
  RawGreenlet* parent_ = nullptr;
  boost::context::fiber ctx_;  // its context while it is switched out
  boost::context::stack_context stack_{};
  bool is_main_ = false;
  bool started_ = false;
  bool dead_ = false;
  void* tsan_fiber_ = nullptr;  // ThreadSanitizer's context for it (TSan builds only)
  detail::EhState eh_;          // its C++ exception state while it is switched out
};

}  // namespace tendril
