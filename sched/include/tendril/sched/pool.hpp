// SPDX-License-Identifier: Apache-2.0
// tendril/sched/pool.hpp: Group, Pool, map/imap/imap_unordered, apply (gevent.pool), and GreenPile
// (eventlet). Members are kept in creation order, so iteration and kill order are deterministic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "tendril/sched/event.hpp"
#include "tendril/sched/greenlet.hpp"
#include "tendril/sched/lock.hpp"
#include "tendril/sched/queue.hpp"

namespace tendril {

class Group;

namespace detail {

// One entry of an imap result queue: a value, a failure, or the end of the results.
template <class R>
struct MapEntry {
  std::size_t index = 0;
  std::variant<std::monostate, R, std::exception_ptr> result;  // monostate: end of results
};

// MapStateBase is what a Group keeps of the imap runs it started, to stop them if it dies first.
// (The feeder greenlet holds the state; the state does not hold the feeder: no cycle.)
struct MapStateBase : RefCounted {
  Group* group = nullptr;  // cleared if the group dies first
};

// MapState is shared by an imap iterator, its feeder greenlet and the result links.
template <class R>
struct MapState : MapStateBase {
  Queue<MapEntry<R>> queue;
  std::size_t outstanding = 0;
  std::size_t spawned = 0;
  bool feeding_done = false;
  bool finished = false;

  void finish_if_done() {
    if (!finished && feeding_done && outstanding == 0) {
      finished = true;
      queue.put(MapEntry<R>{spawned, {}});
    }
  }
};

template <class Range>
using range_item_t = std::decay_t<decltype(*std::begin(std::declval<Range&>()))>;

}  // namespace detail

// MapIterator<R> yields the results of imap (input order) or imap_unordered (completion order):
// next() blocks for the next one and rethrows a failed call's exception.
template <class R>
class MapIterator {
 public:
  MapIterator(Ref<detail::MapState<R>> state, bool ordered)
      : state_(std::move(state)), ordered_(ordered) {}

  // next() returns the next result, or nothing once all are returned. Call it from a greenlet.
  std::optional<R> next() {
    if (done_) return std::nullopt;
    detail::MapEntry<R> entry;
    if (!ordered_) {
      entry = state_->queue.get();
    } else {
      auto it = buffered_.find(index_);
      if (it != buffered_.end()) {
        entry = std::move(it->second);
        buffered_.erase(it);
      } else {
        for (;;) {
          entry = state_->queue.get();
          if (entry.index == index_) break;
          buffered_.emplace(entry.index, std::move(entry));
        }
      }
      ++index_;
    }
    if (std::holds_alternative<std::monostate>(entry.result)) {
      done_ = true;
      return std::nullopt;
    }
    if (auto* e = std::get_if<std::exception_ptr>(&entry.result)) std::rethrow_exception(*e);
    return std::move(std::get<R>(entry.result));
  }

  // Range-for support: `for (auto& v : pool.imap_unordered(f, items))`.
  using iterator = detail::NextIterator<MapIterator, R>;
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  Ref<detail::MapState<R>> state_;
  bool ordered_;
  bool done_ = false;
  std::size_t index_ = 0;
  std::map<std::size_t, detail::MapEntry<R>> buffered_;
};

// Group tracks greenlets: each removes itself when it dies, through a link registered when it is
// added (so membership is already updated when user links and joiners run). Destroying a group
// forgets its members (they go on running) and stops its imap feeders.
class Group {
 public:
  explicit Group(std::string name = {});
  virtual ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  // add() makes g a member (a Pool first waits for room: see Pool). A dead g is not added.
  void add(const Ref<Greenlet>& g) { add_member(g, true, std::nullopt); }
  // discard() removes g without waiting for it; a no-op for a non-member.
  void discard(const Ref<Greenlet>& g);
  // start() adds g, then starts it.
  void start(const Ref<Greenlet>& g) {
    add(g);
    g->start();
  }
  // spawn(f, args...) creates a member greenlet running f(args...) and starts it; on a full Pool
  // it first blocks until a member finishes.
  template <class F, class... Args>
  requires std::invocable < std::decay_t<F>
  &, std::decay_t<Args>&... > auto spawn(F&& f, Args&&... args) {
    auto g = detail::new_task(std::string(),
                              detail::bind_args(std::forward<F>(f), std::forward<Args>(args)...));
    start(g);
    return g;
  }
  // join() waits until the group is empty or timeout passes; returns whether it is empty. With
  // raise_error, rethrows the exception of the first member (in creation order) that failed.
  bool join(std::optional<Duration> timeout = std::nullopt, bool raise_error = false);
  // kill() kills every member (GreenletExit by default), in creation order; with block, waits
  // until the group is empty or timeout passes.
  void kill(std::exception_ptr exception = nullptr, bool block = true,
            std::optional<Duration> timeout = std::nullopt);
  // killone() kills one member.
  void killone(const Ref<Greenlet>& g, std::exception_ptr exception = nullptr, bool block = true,
               std::optional<Duration> timeout = std::nullopt);
  // size() counts members; contains() tests membership; greenlets() lists them in creation order.
  std::size_t size() const noexcept { return members_.size(); }
  bool contains(const Greenlet& g) const noexcept { return members_.count(g.id()) != 0; }
  std::vector<Ref<Greenlet>> greenlets() const;
  // full() is true when spawn() would block (never for a Group).
  virtual bool full() const { return false; }
  const std::string& name() const noexcept { return name_; }

  // apply(f, args...) runs f(args...) in a member greenlet and returns its result; called from a
  // member it runs f directly, so a full pool cannot deadlock on itself (gevent).
  template <class F, class... Args>
  auto apply(F&& f, Args&&... args) {
    Greenlet* me = getcurrent();
    if (me != nullptr && contains(*me)) return std::invoke(f, args...);
    return spawn(std::forward<F>(f), std::forward<Args>(args)...)->get();
  }
  // map(f, items) returns f(item) for every item, in input order; rethrows the first failure.
  // With a function returning void it returns nothing, once every call has finished.
  template <class F, class Range>
  auto map(F f, const Range& items) {
    using R = detail::result_of_t<decltype(detail::bind_args(f, *std::begin(items)))>;
    std::vector<Ref<Task<R>>> tasks;
    for (const auto& item : items) tasks.push_back(spawn(f, item));
    if constexpr (std::is_void_v<R>) {
      for (auto& t : tasks) t->get();
    } else {
      std::vector<R> out;
      out.reserve(tasks.size());
      for (auto& t : tasks) out.push_back(std::move(t->get()));
      return out;
    }
  }
  // imap(f, items) yields f(item) in input order, lazily: a feeder greenlet spawns the calls
  // (blocking while a Pool is full) as results are consumed.
  template <class F, class Range>
  auto imap(F f, Range items) & {
    return start_map(std::move(f), std::move(items), true);
  }
  // imap_unordered(f, items) yields f(item) in completion order.
  template <class F, class Range>
  auto imap_unordered(F f, Range items) & {
    return start_map(std::move(f), std::move(items), false);
  }
  // Not on a temporary: in `for (auto r : Pool(4).imap(f, v))` the pool would die before the
  // loop's first step and its feeder with it. Name the pool (`Pool pool(4);`) and iterate
  // pool.imap(...).
  template <class F, class Range>
  auto imap(F f, Range items) && = delete;
  template <class F, class Range>
  auto imap_unordered(F f, Range items) && = delete;

 protected:
  // add_member() applies a Pool's blocking rules (Full when there is no room and blocking is
  // false or the timeout passes), then registers the removal link and inserts g.
  virtual void add_member(const Ref<Greenlet>& g, bool blocking, std::optional<Duration> timeout);
  // on_discard() is called after a member left (Pool releases its slot).
  virtual void on_discard() {}

 private:
  struct Member {
    Ref<Greenlet> greenlet;
    LinkId link;
  };
  void remove_member(std::uint64_t id);

  template <class F, class Range>
  auto start_map(F f, Range items, bool ordered) {
    using Item = detail::range_item_t<Range>;
    using R = detail::result_of_t<decltype(detail::bind_args(f, std::declval<Item&>()))>;
    static_assert(!std::is_void_v<R>, "imap/imap_unordered need a function that returns a value");
    Ref<detail::MapState<R>> state(new detail::MapState<R>());
    state->group = this;
    auto feeder = tendril::spawn(
        "imap feeder", [state, f = std::move(f), items = std::move(items)]() mutable {
          for (auto& item : items) {
            if (state->group == nullptr) throw GreenletExit();  // the group is gone
            const std::size_t index = state->spawned++;
            ++state->outstanding;
            auto task = state->group->spawn(f, item);
            task->rawlink([state, index](Greenlet& g) {
              --state->outstanding;
              auto& t = static_cast<Task<R>&>(g);
              if (t.exception()) {
                state->queue.put(detail::MapEntry<R>{index, t.exception()});
              } else if (!t.value()) {
                state->queue.put(detail::MapEntry<R>{
                    index, std::make_exception_ptr(NoValue("tendril: " + t.describe() +
                                                           " (an imap call) was killed"))});
              } else {
                state->queue.put(detail::MapEntry<R>{index, std::move(t.get())});
              }
              state->finish_if_done();
            });
          }
          state->feeding_done = true;
          state->finish_if_done();
        });
    std::erase_if(maps_, [](const MapRun& run) { return run.feeder->dead(); });
    maps_.push_back(MapRun{Ref<detail::MapStateBase>(state.get()), feeder});
    return MapIterator<R>(state, ordered);
  }

  std::string name_;
  std::map<std::uint64_t, Member> members_;  // by greenlet id: creation order
  Event empty_;
  struct MapRun {
    Ref<detail::MapStateBase> state;
    Ref<Greenlet> feeder;
  };
  std::vector<MapRun> maps_;  // imap runs whose feeder may still be running
};

// Pool is a Group with at most `size` members: spawn() and add() block while it is full.
class Pool : public Group {
 public:
  // Pool(size) allows size members; size must be at least 1 (UsageError otherwise).
  explicit Pool(std::int64_t size, std::string name = {});
  // free_count() is how many more members fit; full() is true when none does.
  std::size_t free_count() const noexcept;
  bool full() const override { return free_count() == 0; }
  std::size_t capacity() const noexcept { return size_; }
  // wait_available() blocks until a slot is free or timeout passes; returns free_count().
  std::size_t wait_available(std::optional<Duration> timeout = std::nullopt);
  // add() waits for room (up to timeout) or, with blocking false, throws Full at once.
  using Group::add;
  void add(const Ref<Greenlet>& g, bool blocking, std::optional<Duration> timeout = std::nullopt) {
    add_member(g, blocking, timeout);
  }

 protected:
  void add_member(const Ref<Greenlet>& g, bool blocking, std::optional<Duration> timeout) override;
  void on_discard() override { slots_.release(); }

 private:
  std::size_t size_;
  Semaphore slots_;
};

// GreenPile runs calls in a pool and yields their results in spawn order (eventlet).
template <class R>
class GreenPile {
 public:
  // GreenPile(size) uses its own Pool(size); GreenPile(pool) shares one.
  explicit GreenPile(std::int64_t size = 1000) : own_(std::in_place, size), pool_(&*own_) {}
  explicit GreenPile(Pool& pool) : pool_(&pool) {}
  // spawn() runs f(args...) in the pool (blocking while it is full) and queues its result.
  template <class F, class... Args>
  void spawn(F&& f, Args&&... args) {
    waiting_.push_back(pool_->spawn(std::forward<F>(f), std::forward<Args>(args)...));
  }
  // next() waits for the oldest call not yet returned and returns its result (rethrowing its
  // exception), or nothing when every spawned call has been returned.
  std::optional<R> next() {
    if (next_ == waiting_.size()) return std::nullopt;
    auto task = std::move(waiting_[next_++]);
    return std::move(task->get());
  }
  // pending() counts spawned calls not yet returned by next().
  std::size_t pending() const noexcept { return waiting_.size() - next_; }

 private:
  std::optional<Pool> own_;
  Pool* pool_;
  std::vector<Ref<Task<R>>> waiting_;
  std::size_t next_ = 0;
};

}  // namespace tendril
