// SPDX-License-Identifier: Apache-2.0
// tendril/sched/queue.hpp: Queue, LifoQueue, PriorityQueue, JoinableQueue and Channel
// (gevent.queue). Blocked putters and getters are served in the order they started waiting, by
// one queued callback; put() and get() never switch unless they block. Queues start from
// gevent's items, iterate up to a sentinel with until(), and copy their contents with
// snapshot().
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tendril/sched/assert.hpp"
#include "tendril/sched/event.hpp"
#include "tendril/sched/linkable.hpp"

namespace tendril {

// Empty is thrown by get_nowait() on an empty queue, and by get(timeout) when the timeout passes.
class Empty : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Full is thrown by put_nowait() on a full queue, and by put(timeout) when the timeout passes.
class Full : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

// FifoStore is a growable ring buffer: cheaper than std::deque on the put/get hot path.
template <class T>
struct FifoStore {
  std::vector<std::optional<T>> slots;  // capacity is zero or a power of two
  std::size_t mask = 0;                 // slots.size() - 1, once there are slots
  std::size_t head = 0;
  std::size_t count = 0;
  void push(T&& v) {
    if (count == slots.size()) grow();
    slots[(head + count) & mask].emplace(std::move(v));
    ++count;
  }
  T take() {
    std::optional<T>& slot = slots[head];
    T v = std::move(*slot);
    slot.reset();
    head = (head + 1) & mask;
    --count;
    return v;
  }
  const T& front() const { return *slots[head]; }
  std::size_t size() const noexcept { return count; }
  // fill() puts items in, first got first (a new queue's items).
  void fill(std::vector<T>&& items) {
    for (T& v : items) push(std::move(v));
  }
  // snapshot() copies the items, next got first.
  std::vector<T> snapshot() const {
    std::vector<T> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) out.push_back(*slots[(head + i) & mask]);
    return out;
  }

 private:
  void grow() {
    std::vector<std::optional<T>> bigger(slots.empty() ? 16 : slots.size() * 2);
    for (std::size_t i = 0; i < count; ++i) bigger[i] = std::move(slots[(head + i) & mask]);
    slots = std::move(bigger);
    mask = slots.size() - 1;
    head = 0;
  }
};

template <class T>
struct LifoStore {
  std::vector<T> items;
  void push(T&& v) { items.push_back(std::move(v)); }
  T take() {
    T v = std::move(items.back());
    items.pop_back();
    return v;
  }
  const T& front() const { return items.back(); }
  std::size_t size() const noexcept { return items.size(); }
  // fill() takes items as if put in that order: the last is got first (gevent's list(items)).
  void fill(std::vector<T>&& given) { items = std::move(given); }
  // snapshot() copies the items, next got first: newest first.
  std::vector<T> snapshot() const { return std::vector<T>(items.rbegin(), items.rend()); }
};

// Lowest first, as gevent's heapq; ties come out in no promised order.
template <class T, class Less>
struct PriorityStore {
  std::vector<T> items;
  struct Greater {
    bool operator()(const T& a, const T& b) const { return Less()(b, a); }
  };
  void push(T&& v) {
    items.push_back(std::move(v));
    std::push_heap(items.begin(), items.end(), Greater());
  }
  T take() {
    std::pop_heap(items.begin(), items.end(), Greater());
    T v = std::move(items.back());
    items.pop_back();
    return v;
  }
  const T& front() const { return items.front(); }
  std::size_t size() const noexcept { return items.size(); }
  // fill() heapifies items (gevent's heapq.heapify).
  void fill(std::vector<T>&& given) {
    items = std::move(given);
    std::make_heap(items.begin(), items.end(), Greater());
  }
  // snapshot() copies the items in the order take() would return them: it pops a copy of the
  // heap, so even ties come out as get() would give them.
  std::vector<T> snapshot() const {
    std::vector<T> heap = items;
    std::vector<T> out;
    out.reserve(heap.size());
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), Greater());
      out.push_back(std::move(heap.back()));
      heap.pop_back();
    }
    return out;
  }
};

// UntilRange is what until() returns: an input range whose iterator calls get() for each item
// and ends at the first item equal to the sentinel, which it takes off the queue but does not
// yield. It keeps a pointer to the queue: the queue must outlive the loop.
template <class Q, class T>
class UntilRange {
 public:
  // UntilRange(queue, sentinel) gets nothing yet; begin() does.
  UntilRange(Q& queue, T sentinel) : queue_(&queue), sentinel_(std::move(sentinel)) {}
  // iterator reads the item got last; ++ blocks in get() for the next one.
  class iterator {
   public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::input_iterator_tag;
    // A default-constructed iterator is only there for the iterator concepts; do not use it.
    iterator() = default;
    // operator*() is the item got last; valid until the next ++.
    T& operator*() const { return *range_->current_; }
    // operator++() blocks in get() for the next item (it may switch, and throws what get()
    // throws: a kill raises GreenletExit here, and no item is lost).
    iterator& operator++() {
      range_->advance();
      return *this;
    }
    // operator++(int) is operator++() (an input iterator has no old value to return).
    void operator++(int) { ++*this; }
    // An iterator is at the end once the sentinel was got.
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return it.at_end();
    }

   private:
    friend class UntilRange;
    explicit iterator(UntilRange* range) : range_(range) {}
    bool at_end() const noexcept { return !range_->current_.has_value(); }
    UntilRange* range_ = nullptr;
  };
  // begin() blocks in get() for the first item; call it once.
  iterator begin() {
    advance();
    return iterator(this);
  }
  // end() is the end mark: an iterator equals it once the sentinel was got.
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  void advance() {
    current_.reset();
    T item = queue_->get();
    if (!(item == sentinel_)) current_.emplace(std::move(item));
  }
  Q* queue_;
  T sentinel_;
  std::optional<T> current_;
};

// QueueBase holds what every queue shares: the waiter lists, the unlock callback, the name.
class QueueBase : public Waitable {
 public:
  QueueBase(const QueueBase&) = delete;
  QueueBase& operator=(const QueueBase&) = delete;

  // name() / set_name() label the queue in reports; id() numbers it on its hub.
  const std::string& name() const noexcept { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  std::uint64_t id() const noexcept { return id_; }
  std::uint64_t object_id() const noexcept override { return id_; }
  std::string describe() const override;
  // getters() / putters() count greenlets blocked in get()/peek() and in put().
  std::size_t getters() const noexcept { return getters_.size(); }
  std::size_t putters() const noexcept { return putters_.size(); }

 protected:
  QueueBase(const char* kind, std::string name);
  virtual ~QueueBase();
  // schedule_unlock() queues the unlock pass once (gevent's _schedule_unlock): not while one is
  // queued or running (see queue_unlock_cb).
  void schedule_unlock() {
    if (unlock_pending_) return;
    unlock_pending_ = true;
    anchor_->add_ref();  // held by the queued callback
    current_hub("tendril::Queue").schedule(Callback{&queue_unlock_cb, anchor_.get(), 0});
  }
  // The unlock pass (gevent's _unlock) serves blocked putters and getters, one wakeup at a time,
  // each woken greenlet running until it blocks before the pass goes on. unlock_step() is one
  // step of it: it does what comes before the next wakeup (moves a putter's item in, pops a
  // waiter) and returns that waiter's token, with `phase` saying where the pass goes on. It
  // returns a null token when the pass is over (phase becomes pass_over) and, with on_hub false,
  // also when the next step would run T's code (moving an item), which only the hub's stack does
  // (phase unchanged). The token may be stale (its wait ended meanwhile): the caller skips it.
  // The phase lives in the queued callback's arg (Callback::arg): queue_unlock_cb() runs the pass
  // on the hub's stack; under Hub::run_direct() the pass stays at the front of the ready queue and
  // the greenlets it wakes carry it on when they park (Hub::take_direct_other).
  static constexpr std::uint64_t pass_fresh = 0;         // queued, not started (a step of its own)
  static constexpr std::uint64_t pass_round = 1;         // a round starts: putters, then getters
  static constexpr std::uint64_t pass_after_putter = 2;  // a putter was served: getters next
  static constexpr std::uint64_t pass_over = 3;
  WaitToken unlock_step(std::uint64_t& phase, bool on_hub) {
    if (pairs_) [[unlikely]] {
      return pair_step(phase, on_hub);
    }
    // gevent's _unlock, in rounds: move a blocked putter's item in if there is room, then wake
    // a getter if there is an item; a round that serves nobody ends the pass.
    if (phase == pass_after_putter) {
      phase = pass_round;  // the round served someone, so another one follows
      if (!getters_.empty() && count_ > 0) return getters_.pop_front()->token;
    }
    if (!putters_.empty() && (maxsize_ == 0 || count_ < maxsize_)) {
      if (!on_hub) return {};
      WaitNode* putter = putters_.pop_front();
      move_in(*putter);
      phase = pass_after_putter;
      return putter->token;
    }
    if (!getters_.empty() && count_ > 0) return getters_.pop_front()->token;
    phase = pass_over;
    return {};
  }
  // move_in() moves a blocked putter's item into the queue (a queue with items); pair_step() is
  // unlock_step() for a queue that hands items from putter to getter (pairs_: Channel).
  virtual void move_in(WaitNode& putter) = 0;
  virtual WaitToken pair_step(std::uint64_t& phase, bool on_hub) = 0;
  // block_on() parks the current greenlet as `node` in `list` until served (true) or timed out.
  [[gnu::always_inline]] bool block_on(WaitList& list, WaitNode& node, const char* api,
                                       const char* reason, std::optional<Duration> timeout) {
    Hub& hub = current_hub(api);
    std::optional<std::int64_t> deadline;
    if (timeout) deadline = deadline_from(hub, timeout, api);
    node.token = hub.begin_wait(api);
    list.push_back(node);
    struct Unlink {
      QueueBase& self;
      WaitNode& node;
      ~Unlink() {
        // Still linked: timed out or killed, maybe while an unlock is queued that may now have
        // no one to serve (served, or orphaned by the queue's destruction, it is not linked,
        // and the queue may be gone).
        if (node.list != nullptr) [[unlikely]] {
          node.unlink();
          if (self.unlock_pending_) note_stale();
        }
      }
    } unlink{*this, node};
    return hub.park(node.token, reason, this, deadline);
  }
  // note_taken() is for an item or a place taken at once, without a wait: a queued unlock may
  // have nothing to move now (Hub::is_stale).
  void note_taken() noexcept {
    if (unlock_pending_) [[unlikely]] {
      note_stale();
    }
  }
  // unlock_would_act() says whether an unlock pass started now would serve anyone.
  virtual bool unlock_would_act() const noexcept = 0;

  WaitList getters_;
  WaitList putters_;
  // count_: the items a getter may take now (a queue with items keeps it; 0 for a Channel).
  // maxsize_: 0 when unbounded. pairs_: a Channel.
  std::size_t count_ = 0;
  std::size_t maxsize_ = 0;
  bool pairs_ = false;

 private:
  friend Alternative tendril::identify(const Callback& cb) noexcept;
  friend Action tendril::action_of(const Callback& cb) noexcept;
  friend class tendril::Hub;  // Hub::is_stale reads unlock_would_act()
  friend void queue_unlock_cb(Callback& cb, bool run);
  static void run_pass(Callback& cb, bool run);  // queue_unlock_cb()'s body
  static void note_stale() noexcept;
  const char* kind_;
  std::uint64_t id_;
  std::string name_;
  bool unlock_pending_ = false;
  Ref<Anchor> anchor_;
};

// BasicQueue is Queue, LifoQueue and PriorityQueue, by Store.
template <class T, class Store>
class BasicQueue : public QueueBase {
 public:
  // put() adds item; when the queue is full it blocks (up to timeout, then throws Full) or, with
  // block false, throws Full at once. Never switches when there is room.
  void put(T item, bool block = true, std::optional<Duration> timeout = std::nullopt) {
    if (full()) [[unlikely]] {
      return put_blocking(std::move(item), block, timeout);
    }
    push(std::move(item));
    if (!getters_.empty()) schedule_unlock();
    if (full()) this->note_taken();  // the last place: a queued unlock may not move a putter
  }
  // put_nowait() is put() with block false.
  void put_nowait(T item) { put(std::move(item), false); }
  // get() removes and returns the next item; when empty it blocks (up to timeout, then throws
  // Empty) or, with block false, throws Empty at once.
  T get(bool block = true, std::optional<Duration> timeout = std::nullopt) {
    if (this->count_ == 0) [[unlikely]] {
      return get_blocking(block, timeout);
    }
    if (!putters_.empty()) schedule_unlock();
    if (this->count_ == 1) this->note_taken();  // the last item: a getter may go without
    return take();
  }
  // get_nowait() is get() with block false.
  T get_nowait() { return get(false); }
  // peek() returns a copy of the next item without removing it; blocks like get().
  T peek(bool block = true, std::optional<Duration> timeout = std::nullopt) {
    if (this->count_ == 0) wait_for_item(block, timeout, "tendril::Queue::peek", "Queue.peek");
    return store_.front();
  }
  // qsize() counts queued items; empty() / full() as in gevent; maxsize() is 0 when unbounded.
  std::size_t qsize() const noexcept { return this->count_; }
  bool empty() const noexcept { return this->count_ == 0; }
  bool full() const noexcept { return this->maxsize_ > 0 && this->count_ >= this->maxsize_; }
  std::size_t maxsize() const noexcept { return this->maxsize_; }
  // snapshot() copies the queued items in the order get() would return them if nothing else
  // were put: oldest first for Queue, newest first for LifoQueue, lowest first for
  // PriorityQueue (gevent's q.queue is put order for LifoQueue and heap order for
  // PriorityQueue). Never switches; T must be copyable.
  std::vector<T> snapshot() const { return store_.snapshot(); }
  // until() is gevent's `for item in q:` with a sentinel of your choosing (gevent's is
  // StopIteration): `for (T x : q.until(sentinel))` blocks in get() for each item and ends,
  // without yielding it, at the first item == sentinel; items put after the sentinel stay
  // queued. Call it where get() may be called. A greenlet killed while the loop blocks in get()
  // leaves the loop with GreenletExit and takes no item; killed in the loop's body, it keeps
  // the item it was given (already off the queue). Not on a temporary queue: the range points
  // at the queue.
  UntilRange<BasicQueue, T> until(T sentinel) & { return {*this, std::move(sentinel)}; }
  void until(T sentinel) && = delete;

 protected:
  // maxsize 0 is unbounded (gevent's Queue(None) and Queue(0)); negative is a UsageError.
  // items start the queue as if put in order, even beyond maxsize (as gevent: the queue is then
  // full until gets bring it below maxsize).
  BasicQueue(const char* kind, std::int64_t maxsize, std::string name, std::vector<T> items = {})
      : QueueBase(kind, std::move(name)) {
    this->maxsize_ = checked_size(kind, maxsize);
    store_.fill(std::move(items));
    this->count_ = store_.size();
  }
  // push() stores one item; JoinableQueue counts it.
  virtual void push(T&& item) {
    store_.push(std::move(item));
    ++this->count_;
  }

 private:
  static std::size_t checked_size(const char* kind, std::int64_t maxsize) {
    if (maxsize < 0) {
      throw UsageError(std::string("tendril::") + kind + ": maxsize must be >= 0 (0 means " +
                       "unbounded), got " + std::to_string(maxsize));
    }
    return static_cast<std::size_t>(maxsize);
  }
  // put_blocking() is put() on a full queue: apart, so that a put with room needs no frame.
  [[gnu::noinline]] void put_blocking(T item, bool block, std::optional<Duration> timeout) {
    if (!block) throw Full("tendril: " + describe() + " is full");
    WaitNode node;
    node.item = &item;
    if (!getters_.empty()) schedule_unlock();
    if (!this->block_on(putters_, node, "tendril::Queue::put", "Queue.put", timeout)) {
      throw Full("tendril: " + describe() + " stayed full until the timeout");
    }
  }
  // get_blocking() is get() on an empty queue: apart, so that a get with an item needs no frame.
  [[gnu::noinline]] T get_blocking(bool block, std::optional<Duration> timeout) {
    wait_for_item(block, timeout, "tendril::Queue::get", "Queue.get");
    return take();
  }
  // Inline: it holds the switch, and a frame around it costs a mispredicted return.
  [[gnu::always_inline]] void wait_for_item(bool block, std::optional<Duration> timeout,
                                            const char* api, const char* reason) {
    if (!block) throw Empty("tendril: " + describe() + " is empty");
    WaitNode node;
    if (!putters_.empty()) schedule_unlock();
    if (!this->block_on(getters_, node, api, reason, timeout)) {
      throw Empty("tendril: " + describe() + " stayed empty until the timeout");
    }
    // The unlock pass wakes a getter only with an item queued, and switches straight into it.
    TENDRIL_ASSERT(this->count_ > 0, describe(), " woke a getter with no item");
  }
  bool unlock_would_act() const noexcept override {
    return (!putters_.empty() && !full()) || (!getters_.empty() && this->count_ > 0);
  }
  // take() takes the next item off the store.
  T take() {
    --this->count_;
    return store_.take();
  }
  void move_in(WaitNode& putter) override { push(std::move(*static_cast<T*>(putter.item))); }
  WaitToken pair_step(std::uint64_t&, bool) override { return {}; }  // never: not pairs_

  Store store_;
};

}  // namespace detail

// Queue<T> is a FIFO queue; maxsize 0 (the default) is unbounded.
template <class T>
class Queue : public detail::BasicQueue<T, detail::FifoStore<T>> {
 public:
  // Queue(maxsize, name) makes an empty queue. A lone braced value is still maxsize:
  // Queue<int>({5}) is Queue<int>(5).
  explicit Queue(std::int64_t maxsize = 0, std::string name = {})
      : detail::BasicQueue<T, detail::FifoStore<T>>("Queue", maxsize, std::move(name)) {}
  // Queue(maxsize, items, name) is gevent's Queue(maxsize, items): the items are queued, first
  // got first, even beyond maxsize (the queue is then full until gets bring it below). A braced
  // list in second place is items, never the name: Queue<std::string>(0, {"a"}) holds "a".
  explicit Queue(std::int64_t maxsize, std::vector<T> items, std::string name = {})
      : detail::BasicQueue<T, detail::FifoStore<T>>("Queue", maxsize, std::move(name),
                                                    std::move(items)) {}
  // Queue(maxsize, {items...}, name) is the same from a braced list.
  explicit Queue(std::int64_t maxsize, std::initializer_list<T> items, std::string name = {})
      : Queue(maxsize, std::vector<T>(items), std::move(name)) {}

 protected:
  Queue(const char* kind, std::int64_t maxsize, std::string name, std::vector<T> items = {})
      : detail::BasicQueue<T, detail::FifoStore<T>>(kind, maxsize, std::move(name),
                                                    std::move(items)) {}
};

// LifoQueue<T> returns the most recently added item first; picked when the getter wakes.
template <class T>
class LifoQueue : public detail::BasicQueue<T, detail::LifoStore<T>> {
 public:
  // LifoQueue(maxsize, name) makes an empty queue.
  explicit LifoQueue(std::int64_t maxsize = 0, std::string name = {})
      : detail::BasicQueue<T, detail::LifoStore<T>>("LifoQueue", maxsize, std::move(name)) {}
  // LifoQueue(maxsize, items, name) queues items as if put in order: the last is got first.
  // Beyond maxsize, as Queue's.
  explicit LifoQueue(std::int64_t maxsize, std::vector<T> items, std::string name = {})
      : detail::BasicQueue<T, detail::LifoStore<T>>("LifoQueue", maxsize, std::move(name),
                                                    std::move(items)) {}
  // LifoQueue(maxsize, {items...}, name) is the same from a braced list.
  explicit LifoQueue(std::int64_t maxsize, std::initializer_list<T> items, std::string name = {})
      : LifoQueue(maxsize, std::vector<T>(items), std::move(name)) {}
};

// PriorityQueue<T, Less> returns the lowest item first (by Less); picked when the getter wakes.
template <class T, class Less = std::less<T>>
class PriorityQueue : public detail::BasicQueue<T, detail::PriorityStore<T, Less>> {
 public:
  // PriorityQueue(maxsize, name) makes an empty queue.
  explicit PriorityQueue(std::int64_t maxsize = 0, std::string name = {})
      : detail::BasicQueue<T, detail::PriorityStore<T, Less>>("PriorityQueue", maxsize,
                                                              std::move(name)) {}
  // PriorityQueue(maxsize, items, name) heapifies items: lowest got first. Beyond maxsize, as
  // Queue's.
  explicit PriorityQueue(std::int64_t maxsize, std::vector<T> items, std::string name = {})
      : detail::BasicQueue<T, detail::PriorityStore<T, Less>>("PriorityQueue", maxsize,
                                                              std::move(name), std::move(items)) {}
  // PriorityQueue(maxsize, {items...}, name) is the same from a braced list.
  explicit PriorityQueue(std::int64_t maxsize, std::initializer_list<T> items,
                         std::string name = {})
      : PriorityQueue(maxsize, std::vector<T>(items), std::move(name)) {}
};

// JoinableQueue<T> is a Queue that counts unfinished tasks: each put adds one, task_done()
// removes one, and join() waits until none is left.
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  // JoinableQueue(maxsize, name) makes an empty queue with no unfinished task.
  explicit JoinableQueue(std::int64_t maxsize = 0, std::string name = {})
      : Queue<T>("JoinableQueue", maxsize, std::move(name)) {
    done_.set();
  }
  // JoinableQueue(maxsize, items, unfinished_tasks, name) is gevent's: items are queued as
  // Queue's are, and each is an unfinished task unless unfinished_tasks says how many there are
  // (more than the items when some were got and are not done yet). A count below the number of
  // items is a UsageError: gevent takes 0 as "count the items" and a smaller count lets join()
  // return with items still queued.
  explicit JoinableQueue(std::int64_t maxsize, std::vector<T> items,
                         std::optional<std::int64_t> unfinished_tasks = std::nullopt,
                         std::string name = {})
      : Queue<T>("JoinableQueue", maxsize, std::move(name), std::move(items)),
        unfinished_(checked_unfinished(this->qsize(), unfinished_tasks)) {
    if (unfinished_ == 0) done_.set();
  }
  // JoinableQueue(maxsize, {items...}, unfinished_tasks, name) is the same from a braced list.
  explicit JoinableQueue(std::int64_t maxsize, std::initializer_list<T> items,
                         std::optional<std::int64_t> unfinished_tasks = std::nullopt,
                         std::string name = {})
      : JoinableQueue(maxsize, std::vector<T>(items), unfinished_tasks, std::move(name)) {}
  // task_done() marks one item as processed; throws UsageError if called more times than put.
  void task_done() {
    if (unfinished_ == 0) {
      throw UsageError("tendril: task_done() called more times than items were put on " +
                       this->describe());
    }
    if (--unfinished_ == 0) done_.set();
  }
  // join() waits until every item put has been marked done, or timeout passes; returns whether
  // none is left.
  bool join(std::optional<Duration> timeout = std::nullopt) { return done_.wait(timeout); }
  // unfinished_tasks() counts items put and not yet marked done.
  std::size_t unfinished_tasks() const noexcept { return unfinished_; }

 protected:
  void push(T&& item) override {
    ++unfinished_;
    done_.clear();
    Queue<T>::push(std::move(item));
  }

 private:
  static std::size_t checked_unfinished(std::size_t items, std::optional<std::int64_t> given) {
    if (!given) return items;
    if (*given < 0 || static_cast<std::uint64_t>(*given) < items) {
      throw UsageError("tendril::JoinableQueue: unfinished_tasks must count at least the " +
                       std::to_string(items) + " items given, got " + std::to_string(*given));
    }
    return static_cast<std::size_t>(*given);
  }
  std::size_t unfinished_ = 0;
  Event done_;
};

// Channel<T> has no room at all: put() blocks until a getter takes the item (gevent's Channel).
template <class T>
class Channel : public detail::QueueBase {
 public:
  explicit Channel(std::string name = {}) : QueueBase("Channel", std::move(name)) { pairs_ = true; }
  // put() hands item to a getter, blocking until one takes it (up to timeout, then throws Full;
  // with block false the timeout is zero: only a getter already waiting can take it).
  void put(T item, bool block = true, std::optional<Duration> timeout = std::nullopt) {
    if (!block) timeout = Duration::zero();
    detail::WaitNode node;
    node.item = &item;
    if (!getters_.empty()) schedule_unlock();
    if (!this->block_on(putters_, node, "tendril::Channel::put", "Channel.put", timeout)) {
      throw Full("tendril: no getter took the item from " + describe() + " before the timeout");
    }
  }
  void put_nowait(T item) { put(std::move(item), false); }
  // get() takes an item from a putter, blocking until one comes (up to timeout, then Empty).
  T get(bool block = true, std::optional<Duration> timeout = std::nullopt) {
    if (!block) timeout = Duration::zero();
    std::optional<T> slot;
    detail::WaitNode node;
    node.item = &slot;
    if (!putters_.empty()) schedule_unlock();
    if (!this->block_on(getters_, node, "tendril::Channel::get", "Channel.get", timeout)) {
      throw Empty("tendril: no putter came to " + describe() + " before the timeout");
    }
    return std::move(*slot);
  }
  T get_nowait() { return get(false); }
  // qsize() is always 0, and empty() and full() always true: a channel holds no item (gevent's
  // Channel, so code written against a Queue's interface reads it the same way).
  std::size_t qsize() const noexcept { return 0; }
  bool empty() const noexcept { return true; }
  bool full() const noexcept { return true; }
  // until() iterates as BasicQueue::until() does (gevent's `for item in channel:`).
  detail::UntilRange<Channel, T> until(T sentinel) & { return {*this, std::move(sentinel)}; }
  void until(T sentinel) && = delete;
  // balance() is putters waiting minus getters waiting.
  std::ptrdiff_t balance() const noexcept {
    return static_cast<std::ptrdiff_t>(putters_.size()) -
           static_cast<std::ptrdiff_t>(getters_.size());
  }

 private:
  bool unlock_would_act() const noexcept override { return !putters_.empty() && !getters_.empty(); }
  void move_in(detail::WaitNode&) override {}  // never: pairs_
  WaitToken pair_step(std::uint64_t& phase, bool on_hub) override {
    // Hand a putter's item to a getter and wake the getter, then the putter; while both wait.
    if (phase == pass_after_getter) {
      phase = pass_round;
      return then_;
    }
    if (putters_.empty() || getters_.empty()) {
      phase = pass_over;
      return {};
    }
    if (!on_hub) return {};  // the item's move is T's code
    detail::WaitNode* getter = getters_.pop_front();
    detail::WaitNode* putter = putters_.pop_front();
    static_cast<std::optional<T>*>(getter->item)
        ->emplace(std::move(*static_cast<T*>(putter->item)));
    then_ = putter->token;
    phase = pass_after_getter;
    return getter->token;
  }
  static constexpr std::uint64_t pass_after_getter = pass_after_putter;
  WaitToken then_;  // the putter to wake after its getter (pass_after_getter)
};

}  // namespace tendril
