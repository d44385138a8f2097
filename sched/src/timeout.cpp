// SPDX-License-Identifier: Apache-2.0
// timeout.cpp: TimeoutScope.
#include "tendril/sched/timeout.hpp"

#include <string>

namespace tendril {

TimeoutScope::TimeoutScope(std::optional<Duration> duration, std::exception_ptr exception)
    : hub_(&current_hub("tendril::TimeoutScope")),
      greenlet_(hub_->current()),
      exception_(std::move(exception)) {
  if (greenlet_ == nullptr) detail::throw_not_in_greenlet("tendril::TimeoutScope");
  if (!duration) return;
  if (*duration < Duration::zero()) {
    throw UsageError("tendril::TimeoutScope: negative duration (" +
                     std::to_string(duration->count()) + " ns)");
  }
  const std::int64_t now = hub_->now_ns();
  const std::int64_t deadline =
      duration->count() > INT64_MAX - now ? INT64_MAX : now + duration->count();
  timer_ =
      hub_->start_timer(deadline, Callback{&TimeoutScope::fire_cb, this, 0}, TimerPriority::low);
}

TimeoutScope::~TimeoutScope() { cancel(); }

void TimeoutScope::cancel() noexcept {
  if (timer_ != 0) hub_->cancel_timer(std::exchange(timer_, 0));
}

void TimeoutScope::fire_cb(Callback& cb, bool run) {
  auto* self = static_cast<TimeoutScope*>(cb.obj);
  if (!run) return;
  // The scope lives on its greenlet's stack and cancels this timer when it ends, so the greenlet
  // is alive and, since timers run on the hub's stack, blocked inside the scope.
  self->timer_ = 0;
  self->fired_ = true;
  std::exception_ptr e =
      self->exception_ ? self->exception_ : std::make_exception_ptr(Timeout(self));
  Hub::raise_now(self->greenlet_, e);
}

}  // namespace tendril
