// SPDX-License-Identifier: Apache-2.0
// raw.cpp: RawGreenlet, symmetric switching with no hub.
#include "tendril/sched/raw.hpp"

#include <boost/context/protected_fixedsize_stack.hpp>
#include <utility>

#include "tendril/sched/detail/switch.hpp"
#include "tendril/sched/errors.hpp"

namespace tendril {
namespace {

thread_local RawGreenlet* t_current = nullptr;
thread_local RawGreenlet* t_switched_from = nullptr;
thread_local boost::context::fiber t_thread_ctx;  // the thread's own stack while a raw one runs
thread_local const void* t_thread_stack_bottom = nullptr;
thread_local std::size_t t_thread_stack_size = 0;
thread_local void* t_thread_tsan = nullptr;  // TSan's fiber of the thread's own stack
thread_local detail::EhState t_thread_eh;    // the thread's own exception state meanwhile

struct RecordingStack {
  boost::context::protected_fixedsize_stack inner;
  boost::context::stack_context* out;
  boost::context::stack_context allocate() { return *out = inner.allocate(); }
  void deallocate(boost::context::stack_context& sctx) noexcept { inner.deallocate(sctx); }
};

}  // namespace

RawGreenlet::RawGreenlet(std::function<void()> fn, std::size_t stack_size_bytes)
    : fn_(std::move(fn)), stack_size_bytes_(stack_size_bytes), parent_(t_current) {}

RawGreenlet::~RawGreenlet() {
  if (!started_ || dead_) {
    detail::tsan_destroy(tsan_fiber_);
    return;
  }
  // Unwind it on our own terms (annotated switch, GreenletExit at its switch point) and come back
  // here when it is done; Boost.Context's forced unwind would do the same behind ASan's back.
  exit_pending_ = true;
  parent_ = t_current;
  try {
    switch_to();
  } catch (...) {
    // An exception other than GreenletExit escaped while unwinding; a destructor cannot rethrow.
  }
  detail::tsan_destroy(tsan_fiber_);
}

RawGreenlet* RawGreenlet::current() noexcept { return t_current; }

boost::context::fiber& RawGreenlet::slot_of(RawGreenlet* g) noexcept {
  return g ? g->ctx_ : t_thread_ctx;
}

namespace {

void stack_bounds(RawGreenlet* g, const boost::context::stack_context* sctx, const void** bottom,
                  std::size_t* size) {
  if (g == nullptr) {
    *bottom = t_thread_stack_bottom;
    *size = t_thread_stack_size;
  } else {
    *bottom = static_cast<const char*>(sctx->sp) - sctx->size;
    *size = sctx->size;
  }
}

}  // namespace

void RawGreenlet::switch_to() {
  if (dead_) throw UsageError("tendril::RawGreenlet::switch_to: the greenlet has finished");
  RawGreenlet* self = t_current;
  if (self == this) return;
  if (!started_) {
    ctx_ = boost::context::fiber(
        std::allocator_arg,
        RecordingStack{boost::context::protected_fixedsize_stack(stack_size_bytes_), &stack_},
        [this](boost::context::fiber&& from) -> boost::context::fiber {
          const void* bottom = nullptr;
          std::size_t size = 0;
          detail::asan_finish_switch(nullptr, &bottom, &size);
          if (t_switched_from == nullptr) {
            t_thread_stack_bottom = bottom;
            t_thread_stack_size = size;
          }
          slot_of(t_switched_from) = std::move(from);
          try {
            fn_();
          } catch (const boost::context::detail::forced_unwind&) {
            throw;
          } catch (const GreenletExit&) {
            // Killed (by destruction): a normal end, as in the greenlet library.
          } catch (...) {
            error_ = std::current_exception();
          }
          dead_ = true;
          RawGreenlet* parent = parent_;
          while (parent != nullptr && parent->dead_) parent = parent->parent_;
          t_switched_from = this;
          t_current = parent;
          stack_bounds(parent, parent ? &parent->stack_ : nullptr, &bottom, &size);
          detail::asan_start_switch(nullptr, bottom, size);
          detail::tsan_leave(parent ? parent->tsan_fiber_ : t_thread_tsan);
          *detail::eh_globals() = parent ? parent->eh_ : t_thread_eh;
          return std::move(slot_of(parent));
        });
    started_ = true;  // only once the fiber exists: a failed stack allocation leaves it unstarted
  }
  t_switched_from = self;
  t_current = this;
  void* fake_stack = nullptr;
  detail::asan_start_switch(&fake_stack, static_cast<const char*>(stack_.sp) - stack_.size,
                            stack_.size);
  // TSan: the fiber being left is the thread's own when no raw greenlet runs.
  void* leaving = nullptr;
  detail::tsan_enter(tsan_fiber_, leaving);
  if (self == nullptr) t_thread_tsan = leaving;
  // Exception state: keep ours, install the target's; whoever switches back here installs ours.
  detail::EhState* const eh = detail::eh_globals();
  (self ? self->eh_ : t_thread_eh) = *eh;
  *eh = eh_;
  boost::context::fiber back = std::move(ctx_).resume();
  const void* bottom = nullptr;
  std::size_t size = 0;
  detail::asan_finish_switch(fake_stack, &bottom, &size);
  // Back in `self`: whoever switched here left its context in `back`.
  RawGreenlet* from = t_switched_from;
  slot_of(from) = std::move(back);
  t_current = self;
  if (from != nullptr && from->dead_ && from->error_) {
    std::rethrow_exception(std::exchange(from->error_, nullptr));
  }
  if (self != nullptr && self->exit_pending_) {
    self->exit_pending_ = false;
    throw GreenletExit();
  }
}

}  // namespace tendril
