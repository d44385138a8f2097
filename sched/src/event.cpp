// SPDX-License-Identifier: Apache-2.0
// event.cpp: Event and AsyncResult, on Linkable.
#include "tendril/sched/event.hpp"

namespace tendril {

void Event::set() {
  flag_ = true;
  check_and_notify();
}

bool Event::wait(std::optional<Duration> timeout) {
  if (flag_) {
    // Already set: return at once, unless a wakeup is under way, in which case queue behind
    // the earlier waiters (gevent).
    if (notification_pending()) join_pending_notification("tendril::Event::wait", "Event.wait");
    return true;
  }
  return wait_notified("tendril::Event::wait", "Event.wait", timeout);
}

namespace detail {

void AsyncResultBase::mark_set() {
  done_ = true;
  error_ = nullptr;
  check_and_notify();
}

void AsyncResultBase::set_exception(std::exception_ptr e) {
  if (!e) throw UsageError("tendril::AsyncResult::set_exception: the exception must not be null");
  done_ = true;
  error_ = std::move(e);
  check_and_notify();
}

bool AsyncResultBase::wait(std::optional<Duration> timeout) {
  if (done_) {
    if (notification_pending()) {
      join_pending_notification("tendril::AsyncResult::wait", "AsyncResult.wait");
    }
    return true;
  }
  wait_notified("tendril::AsyncResult::wait", "AsyncResult.wait", timeout);
  return done_;
}

void AsyncResultBase::wait_for_get(std::optional<Duration> timeout) {
  if (!done_) {
    wait_notified("tendril::AsyncResult::get", "AsyncResult.get", timeout);
    if (!done_) throw Timeout();
  }
  if (error_) std::rethrow_exception(error_);
}

}  // namespace detail
}  // namespace tendril
