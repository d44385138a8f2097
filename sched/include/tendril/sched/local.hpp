// SPDX-License-Identifier: Apache-2.0
// tendril/sched/local.hpp: Local<T>, greenlet-local storage (gevent.local).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "tendril/sched/errors.hpp"
#include "tendril/sched/greenlet.hpp"

namespace tendril {

namespace detail {
// next_local_key() numbers Local objects of every type from one counter, so keys never collide.
inline std::uint64_t next_local_key() {
  static std::atomic<std::uint64_t> counter{1};
  return counter.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace detail

// Local<T> gives each greenlet its own T: created on the greenlet's first access (by `init`, or
// T{}), isolated from other greenlets, destroyed when the greenlet dies (newest first, on the
// greenlet's own stack). Use it from greenlets only (UsageError otherwise).
template <class T>
class Local {
 public:
  Local() : init_([] { return T{}; }) {}
  // Local(init) makes each greenlet's value with init().
  explicit Local(std::function<T()> init) : init_(std::move(init)) {}
  Local(const Local&) = delete;
  Local& operator=(const Local&) = delete;

  // get() is the current greenlet's value, created on first use.
  T& get() {
    Greenlet& g = current("tendril::Local::get");
    if (auto* slot = static_cast<Slot*>(g.local_slot(key_))) return slot->value;
    auto slot = std::make_unique<Slot>(init_());
    T& value = slot->value;
    g.set_local_slot(key_, std::move(slot));
    return value;
  }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }
  // has_value() tells whether the current greenlet has made its value yet.
  bool has_value() const {
    return current("tendril::Local::has_value").local_slot(key_) != nullptr;
  }
  // reset() destroys the current greenlet's value; the next get() makes a new one.
  void reset() { current("tendril::Local::reset").set_local_slot(key_, nullptr); }

 private:
  struct Slot : detail::LocalSlot {
    explicit Slot(T v) : value(std::move(v)) {}
    T value;
  };
  static Greenlet& current(const char* api) {
    Greenlet* g = getcurrent();
    if (g == nullptr) {
      throw UsageError(std::string(api) + ": greenlet-local storage needs a running greenlet");
    }
    return *g;
  }
  std::function<T()> init_;
  std::uint64_t key_ =
      detail::next_local_key();  // never reused, so a dead Local's leftovers are never read
};

}  // namespace tendril
