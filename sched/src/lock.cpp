// SPDX-License-Identifier: Apache-2.0
// lock.cpp: semaphores and locks on Linkable (gevent's _semaphore.py and lock.py).
#include "tendril/sched/lock.hpp"

#include <string_view>

#include "tendril/sched/assert.hpp"
#include "tendril/sched/errors.hpp"

namespace tendril {

Semaphore::Semaphore(std::int64_t value, std::string name)
    : Semaphore("Semaphore", value, 0, std::move(name)) {}

namespace {
// The wait's name in reports and traces, as a literal (observers keep the pointer).
const char* acquire_reason_of(const char* kind) {
  const std::string_view k(kind);
  if (k == "Lock") return "Lock.acquire";
  if (k == "BoundedSemaphore") return "BoundedSemaphore.acquire";
  return "Semaphore.acquire";
}
}  // namespace

Semaphore::Semaphore(const char* kind, std::int64_t value, std::int64_t bound, std::string name)
    : Linkable(kind, false),
      counter_(value),
      bound_(bound),
      acquire_reason_(acquire_reason_of(kind)) {
  if (value < 0) {
    throw UsageError(std::string("tendril::") + kind + ": initial value must be >= 0 (got " +
                     std::to_string(value) + ")");
  }
  set_name(std::move(name));
}

void Semaphore::took() noexcept {
  Hub* hub = current_hub_or_null();
  holder_ = Ref<Greenlet>(hub != nullptr ? hub->current() : nullptr);
}

bool Semaphore::acquire(bool blocking, std::optional<Duration> timeout) {
  if (counter_ > 0) {
    if (--counter_ == 0) note_taken();  // a queued notification may have no permit to give now
    if (bound_ == 1) took();            // only one-permit semaphores have a holder
    return true;
  }
  if (!blocking) return false;
  if (!wait_notified("tendril::Semaphore::acquire", acquire_reason_, timeout)) return false;
  // A notification switches straight into the woken waiter while a permit is free.
  TENDRIL_ASSERT(counter_ > 0, describe(), " woke a waiter with no permit");
  --counter_;
  if (bound_ == 1) took();
  return true;
}

void Semaphore::release() {
  if (bound_ > 0 && counter_ >= bound_) {
    throw UsageError("tendril: " + describe() + " released too many times (bound " +
                     std::to_string(bound_) + ")");
  }
  ++counter_;
  if (bound_ == 1) holder_ = nullptr;
  check_and_notify();
}

std::int64_t Semaphore::wait(std::optional<Duration> timeout) {
  if (counter_ > 0) return counter_;
  wait_notified("tendril::Semaphore::wait", "Semaphore.wait", timeout);
  return counter_;
}

bool RLock::acquire(bool blocking, std::optional<Duration> timeout) {
  Greenlet* me = getcurrent();
  if (me != nullptr && owner_ == me) {
    ++count_;
    return true;
  }
  if (!lock_.acquire(blocking, timeout)) return false;
  owner_ = me;
  count_ = 1;
  return true;
}

void RLock::release() {
  Greenlet* me = getcurrent();
  if (owner_ == nullptr || owner_ != me) {
    throw UsageError("tendril::RLock::release: " + std::string(me ? me->describe() : "the hub") +
                     (owner_ ? " does not own " : " released the unlocked ") + lock_.describe());
  }
  if (--count_ == 0) {
    owner_ = nullptr;
    lock_.release();
  }
}

}  // namespace tendril
