// SPDX-License-Identifier: Apache-2.0
// tendril/sched/wait.hpp: wait() and iwait() over greenlets and events (gevent.wait/iwait).
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "tendril/sched/greenlet.hpp"
#include "tendril/sched/linkable.hpp"
#include "tendril/sched/queue.hpp"

namespace tendril {

// WaitObject is something wait()/iwait() can watch: a greenlet or a Linkable (Event,
// AsyncResult, Semaphore...). It does not own what it names.
class WaitObject {
 public:
  WaitObject(Greenlet* g) : greenlet_(g) {}   // NOLINT: implicit, as a pointer would be
  WaitObject(Linkable* l) : linkable_(l) {}   // NOLINT
  WaitObject(Linkable& l) : linkable_(&l) {}  // NOLINT
  template <class G>
  WaitObject(const Ref<G>& g) : greenlet_(g.get()) {}  // NOLINT
  Greenlet* greenlet() const noexcept { return greenlet_; }
  Linkable* linkable() const noexcept { return linkable_; }
  // ready() is dead() for a greenlet, ready() for a Linkable.
  bool ready() const { return greenlet_ ? greenlet_->dead() : linkable_->ready(); }
  friend bool operator==(const WaitObject& a, const WaitObject& b) {
    return a.greenlet_ == b.greenlet_ && a.linkable_ == b.linkable_;
  }

 private:
  Greenlet* greenlet_ = nullptr;
  Linkable* linkable_ = nullptr;
};

// IWait yields the watched objects as they become ready: those already ready first, in the order
// given, then in completion order; it stops after `count` objects, or when the timeout passes.
// The objects must outlive it. Use from one greenlet.
class IWait {
 public:
  IWait(std::vector<WaitObject> objects, std::optional<Duration> timeout = std::nullopt,
        std::optional<std::size_t> count = std::nullopt);
  ~IWait();
  IWait(const IWait&) = delete;
  IWait& operator=(const IWait&) = delete;

  // next() blocks for the next ready object; nothing once done or timed out.
  std::optional<WaitObject> next();

  using iterator = detail::NextIterator<IWait, WaitObject>;
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  struct State : RefCounted {
    Queue<std::size_t> ready;
  };
  std::vector<WaitObject> objects_;
  std::vector<LinkId> links_;
  Ref<State> state_;
  std::optional<std::int64_t> deadline_;
  std::size_t remaining_;
};

// iwait() is IWait's constructor as a function: `for (auto obj : tendril::iwait({a, b}))`.
inline IWait iwait(std::vector<WaitObject> objects, std::optional<Duration> timeout = std::nullopt,
                   std::optional<std::size_t> count = std::nullopt) {
  return IWait(std::move(objects), timeout, count);
}

// wait() blocks until every object (or `count` of them) is ready or timeout passes, and returns
// the ready ones in the order they became ready.
std::vector<WaitObject> wait(std::vector<WaitObject> objects,
                             std::optional<Duration> timeout = std::nullopt,
                             std::optional<std::size_t> count = std::nullopt);

// wait() with no objects blocks until the hub is idle: nothing ready, no timer pending (gevent's
// wait() with no arguments). Call it from a greenlet.
void wait();

}  // namespace tendril
