// SPDX-License-Identifier: Apache-2.0
// raw.cpp: RawGreenlet, symmetric switching with no hub.
#include "tendril/sched/raw.hpp"

#include <boost/context/preallocated.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>
#include <utility>

#include "tendril/sched/detail/switch.hpp"
#include "tendril/sched/errors.hpp"

namespace tendril {
namespace {

// The running raw greenlet: null until first asked for, then main().
thread_local RawGreenlet* t_current = nullptr;
// Who jumped last: the greenlet that lands stores the jumper's context in its ctx_.
thread_local RawGreenlet* t_switched_from = nullptr;
// What the jumper passes to the greenlet that lands: a value, or an exception to raise there.
thread_local std::any t_value;
thread_local std::exception_ptr t_error;

}  // namespace

RawGreenlet::RawGreenlet(std::function<void()> fn, std::size_t stack_size_bytes)
    : RawGreenlet(std::function<std::any(std::any)>([f = std::move(fn)](std::any) -> std::any {
                    f();
                    return {};
                  }),
                  stack_size_bytes) {}

RawGreenlet::RawGreenlet(std::function<std::any(std::any)> fn, std::size_t stack_size_bytes)
    : fn_(std::move(fn)), stack_size_bytes_(stack_size_bytes), parent_(current()) {}

RawGreenlet::RawGreenlet(MainTag) noexcept : is_main_(true), started_(true) {}

RawGreenlet::~RawGreenlet() {
  if (is_main_) return;  // its TSan fiber is the thread's own
  if (started_ && !dead_) {
    // Unwind it on our own terms (annotated switch, GreenletExit at its switch point) and come
    // back here when it is done, as the greenlet library does; Boost.Context's forced unwind would
    // do the same behind ASan's back.
    parent_ = current();
    try {
      throw_in(std::make_exception_ptr(GreenletExit()));
    } catch (...) {
      // An exception other than GreenletExit escaped while unwinding; a destructor cannot rethrow.
    }
  }
  detail::tsan_destroy(tsan_fiber_);
}

RawGreenlet& RawGreenlet::main() noexcept {
  static thread_local RawGreenlet main_greenlet{MainTag{}};
  return main_greenlet;
}

RawGreenlet* RawGreenlet::current() noexcept {
  if (t_current == nullptr) t_current = &main();
  return t_current;
}

void RawGreenlet::set_parent(RawGreenlet& p) {
  if (is_main_) {
    throw UsageError("tendril::RawGreenlet::set_parent: cannot set the parent of a main greenlet");
  }
  for (const RawGreenlet* g = &p; g != nullptr; g = g->parent_) {
    if (g == this) throw UsageError("tendril::RawGreenlet::set_parent: cyclic parent chain");
  }
  parent_ = &p;
}

std::any RawGreenlet::switch_to(std::any value) { return transfer(std::move(value), nullptr); }

std::any RawGreenlet::throw_in(std::exception_ptr error) {
  if (!error) error = std::make_exception_ptr(GreenletExit());
  return transfer({}, std::move(error));
}

void RawGreenlet::record_stack_if_main(const void* bottom, std::size_t size) noexcept {
  // ASan reports the bounds of the stack just left; only the main greenlet's are not ours.
  if (!is_main_) return;
  stack_.sp = const_cast<char*>(static_cast<const char*>(bottom)) + size;
  stack_.size = size;
}

std::any RawGreenlet::transfer(std::any value, std::exception_ptr error) {
  RawGreenlet* const self = current();
  RawGreenlet* target = this;
  while (target->dead_) target = target->parent_;  // the main greenlet is never dead
  if (target == self) {
    if (error) std::rethrow_exception(error);
    return value;
  }
  if (!target->started_) target->create_fiber();  // may throw: nothing has moved yet
  t_value = std::move(value);
  t_error = std::move(error);
  target->jump_from(self);
  // Back in `self`: whoever switched here left what it passes in t_value / t_error.
  if (std::exception_ptr raised = std::exchange(t_error, nullptr)) {
    t_value.reset();
    std::rethrow_exception(raised);
  }
  return std::exchange(t_value, {});
}

void RawGreenlet::jump_from(RawGreenlet* self) {
  t_switched_from = self;
  t_current = this;
  void* fake_stack = nullptr;
  detail::asan_start_switch(&fake_stack, static_cast<const char*>(stack_.sp) - stack_.size,
                            stack_.size);
  // TSan: the main greenlet's fiber is whichever the thread was running when it left.
  void* leaving = nullptr;
  detail::tsan_enter(tsan_fiber_, leaving);
  if (self->is_main_) self->tsan_fiber_ = leaving;
  // Exception state: keep ours, install the target's; whoever switches back here installs ours.
  detail::EhState* const eh = detail::eh_globals();
  self->eh_ = *eh;
  *eh = eh_;
  boost::context::fiber back = std::move(ctx_).resume();
  const void* bottom = nullptr;
  std::size_t size = 0;
  detail::asan_finish_switch(fake_stack, &bottom, &size);
  RawGreenlet* from = t_switched_from;
  from->record_stack_if_main(bottom, size);
  from->ctx_ = std::move(back);
  t_current = self;
}

void RawGreenlet::create_fiber() {
  boost::context::protected_fixedsize_stack salloc(stack_size_bytes_);
  stack_ = salloc.allocate();  // may throw: then it stays unstarted
  // Boost.Context's constructor jumps onto the new stack and back (fiber_entry) unannotated, so
  // fiber_entry's frame would come from the creator's ASan fake stack, which is destroyed when the
  // creator finishes: a raw greenlet created by another one then faulted at its end under
  // detect_stack_use_after_return. Announced as a switch, the jump gets no fake frames; the second
  // (empty) switch puts back the creator's stack bounds, which the first one reports.
  void* fake_stack = nullptr;
  const void* creator_bottom = nullptr;
  std::size_t creator_size = 0;
  detail::asan_start_switch(&fake_stack, nullptr, 0);
  ctx_ = boost::context::fiber(
      std::allocator_arg, boost::context::preallocated(stack_.sp, stack_.size, stack_), salloc,
      [this](boost::context::fiber&& from) -> boost::context::fiber {
        const void* bottom = nullptr;
        std::size_t size = 0;
        detail::asan_finish_switch(nullptr, &bottom, &size);
        t_switched_from->record_stack_if_main(bottom, size);
        t_switched_from->ctx_ = std::move(from);
        RawGreenlet* const next = run_and_pick_next();
        // This stack is finished: switch for good to `next`, which lands in jump_from() or, if it
        // had not started, in this lambda.
        detail::asan_start_switch(nullptr,
                                  static_cast<const char*>(next->stack_.sp) - next->stack_.size,
                                  next->stack_.size);
        void* ignored = nullptr;
        detail::tsan_enter(next->tsan_fiber_, ignored);
        *detail::eh_globals() = next->eh_;
        return std::move(next->ctx_);
      });
  detail::asan_finish_switch(fake_stack, &creator_bottom, &creator_size);
  detail::asan_start_switch(&fake_stack, creator_bottom, creator_size);
  detail::asan_finish_switch(fake_stack, nullptr, nullptr);
  started_ = true;  // only once the fiber exists: a failed stack allocation leaves it unstarted
}

RawGreenlet* RawGreenlet::run_and_pick_next() {
  // Every local here is gone before the caller announces the final switch to ASan.
  std::exception_ptr error = std::exchange(t_error, nullptr);
  std::any result;
  if (error) {
    t_value.reset();  // thrown into before it started: fn never runs, as in the greenlet library
  } else {
    try {
      result = fn_(std::exchange(t_value, {}));
    } catch (const boost::context::detail::forced_unwind&) {
      throw;
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const GreenletExit&) {
      result = error;  // a normal end: the GreenletExit is the value passed on
      error = nullptr;
    } catch (...) {
    }
  }
  dead_ = true;
  // Control goes to the parent, or to its first ancestor still alive (the main greenlet never
  // dies); an unstarted one starts with the value. If its stack cannot be allocated, the error
  // goes on up instead.
  RawGreenlet* next = parent_;
  for (;;) {
    while (next->dead_) next = next->parent_;
    if (next->started_) break;
    try {
      next->create_fiber();
      break;
    } catch (...) {
      error = std::current_exception();
      result.reset();
      next = next->parent_;
    }
  }
  t_value = std::move(result);
  t_error = std::move(error);
  t_switched_from = this;
  t_current = next;
  return next;
}

}  // namespace tendril
