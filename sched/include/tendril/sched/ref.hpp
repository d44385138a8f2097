// SPDX-License-Identifier: Apache-2.0
// tendril/sched/ref.hpp: Ref<T>, the intrusive, single-threaded owning handle to greenlets.
#pragma once

#include <cstdint>
#include <utility>

namespace tendril {

// RefCounted is the base of objects owned through Ref<T>. The count is not atomic: greenlets and
// everything they share live on one hub, which runs on one thread.
class RefCounted {
 public:
  RefCounted() = default;
  RefCounted(const RefCounted&) = delete;
  RefCounted& operator=(const RefCounted&) = delete;

  // add_ref() and release() adjust the count; release() deletes the object at zero.
  void add_ref() const noexcept { ++refs_; }
  void release() const noexcept {
    if (--refs_ == 0) delete this;
  }
  // release_not_last() is release() for a holder that knows another reference outlives its own
  // (the hub's reference to a live greenlet): no check for zero.
  void release_not_last() const noexcept { --refs_; }
  // ref_count() is the number of Ref<T> and internal holders; for tests and assertions.
  std::uint32_t ref_count() const noexcept { return refs_; }

 protected:
  virtual ~RefCounted() = default;

 private:
  mutable std::uint32_t refs_ = 0;
};

// Ref<T> shares ownership of a RefCounted T; copying is cheap (one increment, no atomics).
template <class T>
class Ref {
 public:
  Ref() noexcept = default;
  Ref(std::nullptr_t) noexcept {}  // NOLINT: implicit from nullptr like a pointer
  // Ref(p) takes a new reference to p (which may be null).
  explicit Ref(T* p) noexcept : p_(p) {
    if (p_) p_->add_ref();
  }
  Ref(const Ref& o) noexcept : Ref(o.p_) {}
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  template <class U>
  Ref(const Ref<U>& o) noexcept : Ref(static_cast<T*>(o.get())) {}  // NOLINT: upcast
  template <class U>
  Ref(Ref<U>&& o) noexcept : p_(static_cast<T*>(o.detach())) {}  // NOLINT: upcast
  ~Ref() {
    if (p_) p_->release();
  }
  Ref& operator=(Ref o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }

  T* get() const noexcept { return p_; }
  T* operator->() const noexcept { return p_; }
  T& operator*() const noexcept { return *p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  // detach() gives up ownership without releasing; the caller now holds the reference.
  T* detach() noexcept { return std::exchange(p_, nullptr); }

  friend bool operator==(const Ref& a, const Ref& b) noexcept { return a.p_ == b.p_; }

 private:
  T* p_ = nullptr;
};

}  // namespace tendril
