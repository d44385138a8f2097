// SPDX-License-Identifier: Apache-2.0
// tendril/sched/lock.hpp: Semaphore, BoundedSemaphore, Lock and RLock (gevent.lock). All satisfy
// std::Lockable (lock/unlock/try_lock), so std::lock_guard and std::unique_lock work as guards.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tendril/sched/linkable.hpp"

namespace tendril {

// Semaphore counts permits. acquire() takes one, blocking while there is none; release() adds
// one and queues the wakeup of waiters, oldest first, while permits last; it never switches. A
// greenlet that releases and re-acquires before yielding keeps the permit (barging, as gevent).
class Semaphore : public Linkable {
 public:
  // Semaphore(value) starts with value permits; throws UsageError if value is negative.
  explicit Semaphore(std::int64_t value = 1, std::string name = {});

  // acquire() takes a permit; with blocking, waits up to timeout (forever if none). Returns
  // whether it got one. Blocking requires a greenlet (UsageError otherwise).
  bool acquire(bool blocking = true, std::optional<Duration> timeout = std::nullopt);
  // release() returns a permit; never switches. BoundedSemaphore and Lock throw UsageError when
  // released more often than acquired.
  void release();
  // counter() is the number of free permits; locked() is true when there is none.
  std::int64_t counter() const noexcept { return counter_; }
  bool locked() const noexcept { return counter_ <= 0; }
  bool ready() const noexcept override { return counter_ > 0; }
  // wait() blocks until a permit is free (without taking it) or timeout passes; returns counter().
  std::int64_t wait(std::optional<Duration> timeout = std::nullopt);

  // std::Lockable spelling: lock() = acquire(), unlock() = release(), try_lock() = acquire(false).
  void lock() { acquire(); }
  void unlock() { release(); }
  bool try_lock() { return acquire(false); }

  // holder() is, for a semaphore of one permit (a Lock, a BoundedSemaphore(1)) that is taken,
  // the greenlet that took it (null if taken outside a greenlet); otherwise null. Deadlock
  // reports and traces name it.
  const Greenlet* holder() const noexcept override { return holder_.get(); }

 protected:
  Semaphore(const char* kind, std::int64_t value, std::int64_t bound, std::string name);

 private:
  void took() noexcept;  // records the holder; call only when bound_ == 1
  std::int64_t counter_;
  std::int64_t bound_;          // 0: unbounded
  const char* acquire_reason_;  // "Lock.acquire", ...: a literal, as observers keep it
  Ref<Greenlet> holder_;        // see holder(); tracked only when bound_ == 1
};

// BoundedSemaphore is a Semaphore whose release() beyond the initial value is an error.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(std::int64_t value = 1, std::string name = {})
      : Semaphore("BoundedSemaphore", value, value, std::move(name)) {}
};

// Lock is a BoundedSemaphore(1): any greenlet may release it; releasing it unlocked is an error.
class Lock : public Semaphore {
 public:
  explicit Lock(std::string name = {}) : Semaphore("Lock", 1, 1, std::move(name)) {}
};

// RLock is a lock its owner may acquire again; each acquire needs its release, and only the owner
// may release (UsageError otherwise).
class RLock {
 public:
  explicit RLock(std::string name = {}) : lock_(std::move(name)) {}
  // acquire() takes the lock or, for its owner, one more level; see Semaphore::acquire.
  bool acquire(bool blocking = true, std::optional<Duration> timeout = std::nullopt);
  // release() drops one level; the last one frees the lock. Throws UsageError for a non-owner.
  void release();
  // owner() is the greenlet holding the lock, or null; count() its depth.
  Greenlet* owner() const noexcept { return owner_; }
  std::int64_t count() const noexcept { return count_; }
  bool locked() const noexcept { return owner_ != nullptr; }

  void lock() { acquire(); }
  void unlock() { release(); }
  bool try_lock() { return acquire(false); }

 private:
  Lock lock_;
  Greenlet* owner_ = nullptr;
  std::int64_t count_ = 0;
};

}  // namespace tendril
