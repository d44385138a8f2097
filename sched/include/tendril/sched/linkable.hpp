// SPDX-License-Identifier: Apache-2.0
// tendril/sched/linkable.hpp: Linkable, the waiting machinery shared by Event, AsyncResult and
// the semaphores (gevent's AbstractLinkable), and the intrusive wait list the queues use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "tendril/sched/greenlet.hpp"
#include "tendril/sched/hub.hpp"
#include "tendril/sched/ref.hpp"

namespace tendril {

namespace detail {

// WaitNode is one waiting greenlet in a WaitList; it lives on the waiter's own stack, so waiting
// never allocates. `item` lets a queue hand a value to or from the waiter.
class WaitList;
struct WaitNode {
  WaitNode* prev = nullptr;
  WaitNode* next = nullptr;
  WaitList* list = nullptr;  // the list holding the node, or null
  WaitToken token;
  void* item = nullptr;
  // unlink() removes the node from whatever list holds it; a no-op if none.
  void unlink() noexcept;
};

// WaitList is a FIFO of WaitNodes. Not thread-safe; O(1) everything.
class WaitList {
 public:
  WaitList() = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;
  ~WaitList() { orphan_all(); }

  void push_back(WaitNode& n) noexcept {
    n.prev = tail_;
    n.next = nullptr;
    (tail_ ? tail_->next : head_) = &n;
    tail_ = &n;
    n.list = this;
    ++size_;
  }
  // remove() unlinks n, which must be in this list.
  void remove(WaitNode& n) noexcept {
    (n.prev ? n.prev->next : head_) = n.next;
    (n.next ? n.next->prev : tail_) = n.prev;
    n.prev = n.next = nullptr;
    n.list = nullptr;
    --size_;
  }
  // pop_front() unlinks and returns the oldest node, or nullptr. Like remove() it clears `list`,
  // which alone says whether a node is linked; it leaves the node's prev and next as they were
  // (the wakers' hot path: nothing reads them once the node is out).
  WaitNode* pop_front() noexcept {
    WaitNode* n = head_;
    if (n) {
      head_ = n->next;
      (head_ ? head_->prev : tail_) = nullptr;
      n->list = nullptr;
      --size_;
    }
    return n;
  }
  WaitNode* front() const noexcept { return head_; }
  WaitNode* back() const noexcept { return tail_; }
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  // orphan_all() unlinks every node without waking it (the owner is going away); the waiters
  // stay blocked until killed, and a deadlock report names what they waited on as destroyed.
  void orphan_all() noexcept;
  // splice_back() moves every node of other to the end of this list, in order.
  void splice_back(WaitList& other) noexcept;

 private:
  WaitNode* head_ = nullptr;
  WaitNode* tail_ = nullptr;
  std::size_t size_ = 0;
};

inline void WaitNode::unlink() noexcept {
  if (list != nullptr) list->remove(*this);
}

// Anchor lets a queued callback outlive the object it was queued for: the object clears `owner`
// in its destructor, and the callback checks it before touching the object.
struct Anchor : RefCounted {
  void* owner = nullptr;
};

// NextIterator adapts an object with `std::optional<T> next()` (an imap result stream, an
// iwait) to a single-pass input iterator, for range-for.
template <class Owner, class T>
class NextIterator {
 public:
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  NextIterator() = default;
  explicit NextIterator(Owner* owner) : owner_(owner) { ++*this; }
  T& operator*() { return *current_; }
  NextIterator& operator++() {
    current_ = owner_->next();
    if (!current_) owner_ = nullptr;
    return *this;
  }
  void operator++(int) { ++*this; }
  bool operator==(const NextIterator& o) const { return owner_ == o.owner_; }

 private:
  Owner* owner_ = nullptr;
  std::optional<T> current_;
};

// deadline_from() turns an optional timeout into an optional deadline on `hub`; throws UsageError
// naming `api` for a negative timeout.
std::optional<std::int64_t> deadline_from(Hub& hub, std::optional<Duration> timeout,
                                          const char* api);

}  // namespace detail

// Linkable is the base of objects greenlets wait on until they are "ready" (gevent's
// AbstractLinkable): waiters are woken in the order they started waiting, by one callback that
// the state change queues (set() and release() never switch), each waiter running until it
// blocks. Not copyable; must not be destroyed while greenlets wait on it (they stay blocked).
class Linkable : public Waitable {
 public:
  Linkable(const Linkable&) = delete;
  Linkable& operator=(const Linkable&) = delete;
  virtual ~Linkable();

  // name() / set_name() label the object in deadlock reports and traces.
  const std::string& name() const noexcept { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  // id() numbers primitives in creation order on their hub (0 if made outside any hub).
  std::uint64_t id() const noexcept { return id_; }
  std::uint64_t object_id() const noexcept override { return id_; }
  // describe() renders "Event#3 'ready'".
  std::string describe() const override;
  // waiter_count() counts greenlets blocked on this object.
  std::size_t waiter_count() const noexcept { return links_.size() + arrived_.size(); }
  // rawlink() calls callback on the hub once the object is ready, in line with the waiters (then
  // it is unlinked, as in gevent); it must not block. Returns an id for unlink().
  LinkId rawlink(std::function<void()> callback);
  // unlink() removes a rawlink that has not fired; a no-op otherwise.
  void unlink(LinkId id) noexcept;
  // ready() says whether a waiter could proceed now. noexcept: a notification asks it between
  // the wakeups it makes, where a greenlet may be taking the next step itself (Hub::run_direct).
  virtual bool ready() const noexcept = 0;

 protected:
  // kind names the class in reports ("Event"); notify_all says whether one notification wakes
  // every waiter (Event) or only while ready() stays true (Semaphore).
  Linkable(const char* kind, bool notify_all);

  // check_and_notify() queues the notification callback if ready, waited on and not yet queued.
  void check_and_notify();
  // wait_notified() blocks the calling greenlet until a notification wakes it (true) or timeout
  // passes (false). `api` names the call in errors and `reason` the wait in reports.
  // Inline (below): it holds the switch, and a frame around it costs a mispredicted return.
  bool wait_notified(const char* api, const char* reason, std::optional<Duration> timeout);
  // join_pending_notification() is for a waiter that finds the object ready while a notification
  // is queued or running: it waits behind the earlier waiters (gevent), with no timeout.
  void join_pending_notification(const char* api, const char* reason);
  // notification_pending() is true from the queueing of a notification until it has finished.
  bool notification_pending() const noexcept { return notifier_ != Notifier::idle; }
  // note_taken() is for a subclass whose ready() just turned false without a wait (a permit
  // taken at once): a queued notification may have nothing to do now (Hub::is_stale).
  void note_taken() noexcept {
    if (notifier_ == Notifier::queued) [[unlikely]] {
      note_stale();
    }
  }

 private:
  friend Alternative identify(const Callback& cb) noexcept;
  friend Action action_of(const Callback& cb) noexcept;
  friend class Hub;  // Hub::is_stale reads notify_idle()
  friend void detail::linkable_notify_cb(Callback& cb, bool run);
  enum class Notifier : std::uint8_t { idle, queued, running };
  // The notification (gevent's _notify_links) wakes the waiters present when it starts, oldest
  // first, each running until it blocks; those that arrive meanwhile (arrived_) are woken next, up
  // to the last one there when the first list is done; a semaphore's stops once not ready(). Then
  // what is left goes back to links_, and a new notification is queued if one is due.
  // notify_step() is one step of it: it does what comes before the next wakeup and returns that
  // waiter's token, with `phase` (kept in the queued callback's arg) saying where it goes on. It
  // returns a null token when the notification is over (phase becomes notify_over), and also
  // after running a rawlink (on_hub true: the caller checks the anchor, since the callback may
  // have destroyed this object, and calls again) or, with on_hub false, when the next step would
  // run a rawlink or queue a notification (only the hub's stack does those; phase unchanged).
  // linkable_notify_cb() runs the steps on the hub's stack; under Hub::run_direct() the
  // notification stays at the front of the ready queue and the greenlets it wakes carry it on
  // when they park (Hub::take_direct_other), as a queue's unlock pass.
  static constexpr std::uint64_t notify_fresh = 0;        // queued, not started (a step of its own)
  static constexpr std::uint64_t notify_links_start = 1;  // links_ next; its last node is final_
  static constexpr std::uint64_t notify_links = 2;        // waking links_, up to final_
  static constexpr std::uint64_t notify_arrived_start = 3;  // arrived_ next
  static constexpr std::uint64_t notify_arrived = 4;        // waking arrived_, up to final_
  static constexpr std::uint64_t notify_end = 5;  // both done: what is left back to links_
  static constexpr std::uint64_t notify_over = 6;
  WaitToken notify_step(std::uint64_t& phase, bool on_hub);
  [[gnu::noinline]] WaitToken notify_step_other(std::uint64_t& phase, bool on_hub);
  // run_rawlink() runs a rawlink's callback (taken out of its list) and frees it.
  void run_rawlink(detail::WaitNode* n) noexcept;
  // notify_idle() says whether a notification run now would wake nobody.
  bool notify_idle() const;
  // left() is called after a waiter or rawlink leaves while a notification is queued: with none
  // left, the notification is cancelled (gevent's unlink()), and a later waiter queues a new one.
  void left() noexcept;
  static void note_stale() noexcept;
  void free_rawlinks(detail::WaitList& list) noexcept;

  const char* kind_;
  bool notify_all_;
  Notifier notifier_ = Notifier::idle;
  std::uint64_t id_;
  std::string name_;
  detail::WaitList links_;
  detail::WaitList arrived_;           // waiters that joined a pending notification
  detail::WaitNode* final_ = nullptr;  // the last node the running notification wakes in a list
  LinkId next_rawlink_id_ = 1;
  Ref<detail::Anchor> anchor_;
};

[[gnu::always_inline]] inline WaitToken Linkable::notify_step(std::uint64_t& phase, bool on_hub) {
  // The common steps inline: the next greenlet of links_, from the start or not, and the end
  // with nobody arrived meanwhile and nothing left to notify.
  if (phase == notify_fresh) {
    notifier_ = Notifier::running;
    final_ = links_.back();
    phase = notify_links;
  } else if (phase == notify_arrived_start && arrived_.empty()) {
    if (links_.empty() || !ready()) {
      notifier_ = Notifier::idle;
      phase = notify_over;
      return {};
    }
  }
  if (phase == notify_links) {
    detail::WaitNode* const n = links_.front();
    if (n != nullptr && n->token.greenlet != nullptr && (notify_all_ || ready())) [[likely]] {
      if (n == final_) phase = notify_arrived_start;
      links_.pop_front();
      return n->token;
    }
  }
  return notify_step_other(phase, on_hub);
}

[[gnu::always_inline]] inline bool Linkable::wait_notified(const char* api, const char* reason,
                                                           std::optional<Duration> timeout) {
  Hub& hub = current_hub(api);
  std::optional<std::int64_t> deadline;
  if (timeout) deadline = detail::deadline_from(hub, timeout, api);
  detail::WaitNode node;
  node.token = hub.begin_wait(api);
  links_.push_back(node);
  struct Unlink {
    Linkable& self;
    detail::WaitNode& node;
    ~Unlink() {
      // Still linked: it leaves by a timeout or a kill, maybe while a notification is queued
      // (woken by the notification, or orphaned by the object's destruction, it is not linked,
      // and the object may be gone).
      if (node.list != nullptr) [[unlikely]] {
        node.unlink();
        if (self.notifier_ == Notifier::queued) self.left();
      }
    }
  } unlink{*this, node};
  // gevent's rawlink() checks whether to notify; every caller here waits because the object is
  // not ready(), so only a subclass calling this while ready needs it (kept off the hot path:
  // check_and_notify() out of line costs 17 instructions per wait).
  if (notifier_ == Notifier::idle && ready()) [[unlikely]] {
    check_and_notify();
  }
  return hub.park(node.token, reason, this, deadline);
}

}  // namespace tendril
