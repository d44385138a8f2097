// SPDX-License-Identifier: Apache-2.0
// tendril/sched/greenlet.hpp: greenlets (gevent's Greenlet), spawn, sleep, join, kill, run.
#pragma once

#include <concepts>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tendril/sched/assert.hpp"
#include "tendril/sched/detail/observe.hpp"
#include "tendril/sched/detail/switch.hpp"
#include "tendril/sched/errors.hpp"
#include "tendril/sched/hub.hpp"
#include "tendril/sched/ref.hpp"

namespace tendril {

// LinkId names a link so that unlink() can remove it.
using LinkId = std::uint64_t;

class Greenlet;

namespace detail {
// LocalSlot is one greenlet-local value (see Local<T> in tendril/sched/local.hpp).
struct LocalSlot {
  virtual ~LocalSlot() = default;
};
// joinall_indexes() is joinall() over plain pointers (null entries are skipped): the indexes of
// the greenlets that finished, in gevent's order.
std::vector<std::size_t> joinall_indexes(std::span<Greenlet* const> greenlets,
                                         std::optional<Duration> timeout, bool raise_error);
}  // namespace detail

// Greenlet is a cooperative green thread on its own stack, run by the hub of the thread that
// created it. Create greenlets with spawn() or, for subclasses overriding run(), with
// make_greenlet<G>(...) followed by start(); always hold them through Ref<>.
class Greenlet : public RefCounted, public Waitable {
 public:
  // State is the lifecycle: created -> scheduled (start queued) -> running (has a stack; may be
  // blocked) -> dead. A greenlet killed before it ran goes from created/scheduled to dead.
  enum class State : std::uint8_t { created, scheduled, running, dead };

  // Greenlet(name) makes an unstarted greenlet on the running hub; throws UsageError if this
  // thread runs no hub. The name shows in reports; ids count up in creation order.
  explicit Greenlet(std::string name = {});
  ~Greenlet() override;

  // start() schedules the greenlet to run (a callback, after those already queued); a no-op if
  // already started or dead. Throws UsageError if the greenlet's hub was destroyed (so are
  // start_later() and kill() of a never-started greenlet).
  void start();
  // start_later() schedules the greenlet to start after delay (a timer, even for zero: a plain
  // spawn made after it runs first, as in gevent). Throws UsageError for a negative delay.
  void start_later(Duration delay);

  // cancel() is eventlet's GreenThread.cancel(): if the greenlet has not started running (made,
  // or waiting for its start or its spawn_after() timer), it dies at once of GreenletExit
  // without running, its timer is freed, its links fire, and cancel() returns true. Once it has
  // started, or when it is dead, cancel() does nothing and returns false (so twice is harmless).
  bool cancel();
  // join() blocks the calling greenlet until this one is dead or timeout passes; returns dead().
  // Never throws the greenlet's exception (use Task::get). Throws UsageError when called outside
  // a greenlet or on the caller itself.
  bool join(std::optional<Duration> timeout = std::nullopt);
  // kill() raises exception (default GreenletExit) in the greenlet at its blocking point. A
  // never-started greenlet dies at once without running and its links still fire. With block,
  // the caller waits until the greenlet has died (or timeout passed). A no-op on a dead greenlet.
  void kill(std::exception_ptr exception = nullptr, bool block = true,
            std::optional<Duration> timeout = std::nullopt);
  // kill_nowait() is kill(exception, false): it raises the exception in the greenlet and returns
  // at once (gevent's kill(block=False); the name follows get_nowait/put_nowait).
  void kill_nowait(std::exception_ptr exception = nullptr) { kill(std::move(exception), false); }

  // started() is true from start() until the greenlet dies, then false again (gevent).
  bool started() const noexcept { return state_ == State::scheduled || state_ == State::running; }
  // ready() / dead() are true once the greenlet has finished, by return, exception or kill.
  bool ready() const noexcept { return state_ == State::dead; }
  bool dead() const noexcept { return state_ == State::dead; }
  // successful() is true once dead without an exception; ending by GreenletExit counts (gevent).
  bool successful() const noexcept { return dead() && !error_; }
  // killed() is true once dead by GreenletExit (raised by kill() or thrown by the greenlet).
  bool killed() const noexcept { return dead() && killed_; }
  // exception() is the uncaught exception the greenlet died of, or null.
  std::exception_ptr exception() const noexcept { return error_; }
  // exit_value() is the GreenletExit (or subclass) the greenlet was killed by, or null: gevent's
  // g.value for a killed greenlet (a Task's typed value() cannot hold it, and get() throws
  // NoValue).
  std::exception_ptr exit_value() const noexcept { return exit_; }
  State state() const noexcept { return state_; }

  // link() runs callback(*this) in a new greenlet after this one dies (gevent's SpawnedLink), so
  // the callback may block. Links fire in registration order with joiners and rawlinks, from one
  // notification callback: each link greenlet is entered at once and runs until it blocks or
  // ends before the next link fires. Linking a dead greenlet schedules the notification at once.
  // An exception escaping the callback is reported like any greenlet's, by the link greenlet,
  // whose link_of() names this one. link_value() / link_exception() fire only on success /
  // failure (ending by GreenletExit is a success).
  LinkId link(std::function<void(Greenlet&)> callback);
  LinkId link_value(std::function<void(Greenlet&)> callback);
  LinkId link_exception(std::function<void(Greenlet&)> callback);
  // rawlink() calls callback(*this) on the hub's stack after the greenlet dies, in order with the
  // other links (gevent's rawlink): cheaper than link(), but the callback must not block (a
  // blocking call there throws UsageError). An exception escaping it is reported as "a rawlink
  // of" this greenlet, with this greenlet passed to the error handler.
  LinkId rawlink(std::function<void(Greenlet&)> callback);
  // unlink() removes a link or rawlink that has not fired yet; a no-op otherwise.
  void unlink(LinkId id) noexcept;
  // link_of() is, for a greenlet running a link() callback, the greenlet whose link it runs;
  // otherwise nullptr. Error handlers use it to tell a failing link from a failing greenlet.
  Greenlet* link_of() const noexcept { return link_of_.get(); }

  // id() counts greenlets in creation order on their hub (main is 1); stable across runs.
  std::uint64_t id() const noexcept { return id_; }
  const std::string& name() const noexcept { return name_; }
  // set_name() renames the greenlet (gevent's g.name = ...): reports, deadlock reports and
  // describe() use the new name from then on; a trace keeps the name it was spawned with.
  void set_name(std::string name) { name_ = std::move(name); }
  // stack() is the greenlet's stack (empty until it first runs), for diagnostics.
  const boost::context::stack_context& stack() const noexcept { return stack_; }
  // describe() renders "#3 'foo'" (or "#3" when unnamed) for reports.
  std::string describe() const override;
  const Greenlet* as_greenlet() const noexcept override { return this; }
  // wait_reason() names the blocking call the greenlet is parked in, or nullptr.
  const char* wait_reason() const noexcept { return wait_reason_; }
  // wait_object() is what the parked greenlet waits on (may be null).
  const Waitable* wait_object() const noexcept { return wait_object_; }
  Hub& hub() const noexcept { return *hub_; }
  // local_slot() / set_local_slot() hold this greenlet's Local<T> values, for Local<T> itself.
  detail::LocalSlot* local_slot(std::uint64_t key) const noexcept;
  void set_local_slot(std::uint64_t key, std::unique_ptr<detail::LocalSlot> slot);
  // forget_wait_object() is for primitives being destroyed while this greenlet waits on them:
  // the deadlock report then stops naming the object.
  void forget_wait_object(const Waitable* object) noexcept {
    if (wait_object_ == object) wait_object_ = nullptr;
  }

 protected:
  // run() is the greenlet's body; override it in a subclass (gevent's _run). The default throws.
  virtual void run();
  // wait_for_result() blocks until dead (or throws Timeout), then rethrows the exception if any;
  // used by Task<T>::get().
  void wait_for_result(std::optional<Duration> timeout, const char* api);

 private:
  friend class Hub;
  friend Alternative identify(const Callback& cb) noexcept;
  friend Action action_of(const Callback& cb) noexcept;
  friend std::vector<std::size_t> detail::joinall_indexes(std::span<Greenlet* const>,
                                                          std::optional<Duration>, bool);
  template <class G, class... Args>
  friend Ref<G> make_greenlet(Args&&... args);

  struct Link {
    enum class Kind : std::uint8_t { any, value, exception, joiner, raw };
    LinkId id;
    Kind kind;
    std::function<void(Greenlet&)> fn;
    WaitToken joiner;
  };

  LinkId add_link(Link::Kind kind, std::function<void(Greenlet&)> fn, WaitToken joiner);
  // spawn_link() runs fn(*this) in a new greenlet entered at once (from the hub's stack).
  void spawn_link(std::function<void(Greenlet&)> fn);
  void begin_start();
  // check_hub() throws UsageError naming api if the greenlet's hub was destroyed.
  void check_hub(const char* api) const;
  void die_before_start(std::exception_ptr error);
  void on_death() noexcept;
  void schedule_notify();
  static void entry_point(Greenlet* self);
  static void start_cb(Callback& cb, bool run);
  static void notify_cb(Callback& cb, bool run);

  Hub* hub_;
  std::uint64_t hub_serial_;  // hub_->serial(): tells a destroyed hub from a new one at its address
  std::uint64_t id_;
  std::string name_;
  State state_ = State::created;
  bool heap_allocated_ = false;
  bool killed_ = false;
  bool notify_pending_ = false;
  bool timed_out_ = false;
  boost::context::fiber ctx_;
  boost::context::stack_context stack_{};
  std::uint64_t wait_seq_ = 0;
  const char* wait_reason_ = nullptr;
  const Waitable* wait_object_ = nullptr;
  std::exception_ptr pending_throw_;
  std::exception_ptr error_;
  std::exception_ptr exit_;      // the GreenletExit that killed it
  std::uint64_t death_seq_ = 0;  // the order of its death on its hub (joinall's result order)
  TimerId start_timer_ = 0;
  std::vector<Link> links_;
  std::size_t links_next_ = 0;  // first link not yet notified, while notifying
  LinkId next_link_id_ = 1;
  Greenlet* live_prev_ = nullptr;
  Greenlet* live_next_ = nullptr;
  std::vector<std::pair<std::uint64_t, std::unique_ptr<detail::LocalSlot>>> locals_;
  Ref<Greenlet> link_of_;       // the greenlet whose link() this one runs, if any
  void* tsan_fiber_ = nullptr;  // ThreadSanitizer's context for this greenlet (TSan builds only)
  detail::EhState eh_;          // its C++ exception state while it is switched out
  void destroy_locals() noexcept;
};

// ---- The switch path (see Hub: kept inline so few frames sit between switches) ----

inline void Hub::resume(Greenlet* g, Resume why) {
  if (current_ != nullptr) [[unlikely]] {
    resume_while_running(g);
  }
  Observer* const observer = TENDRIL_OBSERVER(this);
  if (observer != nullptr) [[unlikely]] {
    observe_resume(observer, g, why);
  }
  current_ = g;
  void* fake_stack = nullptr;
  detail::asan_start_switch(&fake_stack, static_cast<char*>(g->stack_.sp) - g->stack_.size,
                            g->stack_.size);
  detail::tsan_enter(g->tsan_fiber_, tsan_native_);
  // Each side keeps its own C++ exception state while the other runs (see detail::EhState).
  detail::EhState* const eh = eh_globals_;
  native_eh_ = *eh;
  *eh = g->eh_;
  save_to_ = &native_;
  boost::context::fiber back = std::move(g->ctx_).resume();
  detail::land(save_to_, std::move(back));  // the greenlet that switched back: into its ctx_
  detail::asan_finish_switch(fake_stack, nullptr, nullptr);
  // Not always g: in run_direct(), g may have switched to another greenlet, and so on.
  Greenlet* const last = current_;
  current_ = nullptr;
  direct_armed_ = direct_off;
  if (observer != nullptr) [[unlikely]] {
    observe_return(observer, last);
  }
  if (last->state_ == Greenlet::State::dead) [[unlikely]] {
    finish_dead(last);
  }
}

inline bool Hub::is_stale(const Callback& cb) noexcept {
  if (cb.fn == &Hub::wake_cb || cb.fn == &Hub::yield_cb) {
    const auto* g = static_cast<const Greenlet*>(cb.obj);
    return g->state_ != Greenlet::State::running || g->wait_seq_ != cb.arg;
  }
  return stale_other(cb);
}

[[gnu::always_inline]] inline Greenlet* Hub::take_direct() noexcept {
  // What the loop would do next, done by the greenlet that parks (see run_direct()): a plain
  // resume of a greenlet still in that wait, within the step budget and the livelock bound; a
  // pass, a queue's unlock pass or a notification (take_direct_other). Anything else is the
  // hub's. (Whatever sets stop_ or an observer also disarms run_direct().)
  if (ready_.empty()) return nullptr;
  const Callback& cb = ready_.peek(0);
  const bool yield = cb.fn == &Hub::yield_cb;
  if (!yield && cb.fn != &Hub::wake_cb) return take_direct_other();
  auto* const g = static_cast<Greenlet*>(cb.obj);
  if (g->wait_seq_ != cb.arg) return nullptr;  // a dead greenlet's seq has moved on (on_death)
  if (yield) {
    if (steps_ >= yield_bound_) return nullptr;
  } else {
    if (steps_ >= step_limit_) return nullptr;
    progress_step_ = steps_ + 1;
    set_yield_bound();
    // As wake_cb: a wait woken while other wake_callback()s are queued may leave one stale.
    if (--pending_wakes_ != 0) note_stale_possible();
  }
  ++steps_;
  ready_.take(0);
  if (live_count_ >= prefetch_min_live && ready_.size() > prefetch_object_ahead) prefetch_ahead(0);
  ++g->wait_seq_;
  // (timed_out_ stays: only park_until() reads it, after clearing it itself before it parks, and
  // a timeout's wakeup never comes this way.)
  g->release_not_last();  // the callback's reference; the hub holds another while g lives
  return g;
}

inline void Hub::sleep0() {
  Greenlet* const g = current_;
  if (g == nullptr) [[unlikely]] {
    detail::throw_not_in_greenlet("tendril::sleep");
  }
  if (direct_armed_ != direct_fast) [[unlikely]] {
    return sleep0_other(g);
  }
  sleep0_direct(g);
}

[[gnu::always_inline]] inline void Hub::sleep0_direct(Greenlet* g) {
  // The short path takes what take_direct() would take, checked the same way before anything
  // moves; anything else queues the wakeup and parks, where take_direct() looks again. (The
  // order below keeps few values live at once: each register saved in this frame costs two
  // instructions per sleep(0).)
  if (ready_.empty()) [[unlikely]] {
    return sleep0_queued(g);
  }
  // Only another sleep(0) at the front: a wakeup there (progress, with its own bookkeeping) goes
  // the general way, which still switches directly (take_direct).
  const Callback& front = ready_.front();
  auto* const to = static_cast<Greenlet*>(front.obj);
  if (front.fn != &Hub::yield_cb || steps_ >= yield_bound_ || to->wait_seq_ != front.arg) {
    return sleep0_queued(g);
  }
  ++steps_;
  ++to->wait_seq_;         // (timed_out_ stays: see take_direct)
  to->release_not_last();  // the front's reference; the hub holds another while `to` lives
  g->add_ref();            // our wakeup's reference, as yield_callback() takes
  ready_.rotate(Callback{&Hub::yield_cb, g, ++g->wait_seq_});
  // wait_object_ is null whenever a greenlet runs: every park clears it on the way out.
  g->wait_reason_ = detail::sleep0_reason;
  switch_direct(g, to);
  // Read back, not kept across the switch: one register less to save in this frame.
  Greenlet* const self = current_;
  self->wait_reason_ = nullptr;
  if (self->pending_throw_) [[unlikely]] {
    rethrow_pending(self);
  }
}

// Always inline: out of line, GCC finds it has no side effect (a prefetch has none) and drops the
// call.
[[gnu::always_inline]] inline void Hub::prefetch_ahead(std::size_t skip) const noexcept {
  // The saved stack pointer of a suspended fiber is the one word a boost::context::fiber holds
  // (fcontext); the context record and the frames it returns to lie just above it. Read as
  // bytes: a prefetch never faults, so were the layout other, only the hint would be lost.
  const Callback& next = ready_.peek(skip + prefetch_stack_ahead);
  if (is_plain_resume(next)) {
    static_assert(sizeof(boost::context::fiber) == sizeof(void*));
    const char* sp = nullptr;
    std::memcpy(&sp, &static_cast<const Greenlet*>(next.obj)->ctx_, sizeof sp);
    for (int line = 0; line < 5; ++line) __builtin_prefetch(sp + 64 * line);
  }
  // The object's switch fields: its first three cache lines and the one holding eh_.
  const char* object = static_cast<const char*>(ready_.peek(skip + prefetch_object_ahead).obj);
  __builtin_prefetch(object);
  __builtin_prefetch(object + 64);
  __builtin_prefetch(object + 128);
  __builtin_prefetch(object + 256);
}

[[gnu::always_inline]] inline void Hub::switch_direct(Greenlet* from, Greenlet* to) {
  current_ = to;
  void* fake_stack = nullptr;
  detail::asan_start_switch(&fake_stack, static_cast<char*>(to->stack_.sp) - to->stack_.size,
                            to->stack_.size);
  detail::tsan_switch(to->tsan_fiber_);
  detail::EhState* const eh = eh_globals_;
  from->eh_ = *eh;
  *eh = to->eh_;
  save_to_ = &from->ctx_;
  boost::context::fiber back = std::move(to->ctx_).resume();
  boost::context::fiber* const slot = save_to_;
  detail::land(slot, std::move(back));
  if (slot == &native_) {  // the hub resumed us: its stack's bounds are ASan's to report
    detail::asan_finish_switch(fake_stack, &native_stack_bottom_, &native_stack_size_);
  } else {
    detail::asan_finish_switch(fake_stack, nullptr, nullptr);
  }
}

[[gnu::always_inline]] inline void Hub::switch_to_hub() {
  Greenlet* const g = current_;
  // Dense stacks without kernel guard regions: check the page under the stack and the stack
  // pointer at every switch out.
  if (stacks_.checks_switches()) check_dense_stack(g);
  if (direct_armed_) {
    if (Greenlet* const next = take_direct()) {
      if (next != g) switch_direct(g, next);
      return;  // our own wakeup was next: no switch at all
    }
  }
  void* fake_stack = nullptr;
  detail::asan_start_switch(&fake_stack, native_stack_bottom_, native_stack_size_);
  detail::tsan_leave(tsan_native_);
  detail::EhState* const eh = eh_globals_;
  g->eh_ = *eh;
  *eh = native_eh_;
  save_to_ = &g->ctx_;
  boost::context::fiber back = std::move(native_).resume();
  boost::context::fiber* const slot = save_to_;
  detail::land(slot, std::move(back));
  if (slot == &native_) {
    detail::asan_finish_switch(fake_stack, &native_stack_bottom_, &native_stack_size_);
  } else {
    detail::asan_finish_switch(fake_stack, nullptr, nullptr);
  }
}

inline void Hub::wake(Greenlet* g, std::uint64_t seq, bool timed_out) {
  if (g->state_ != Greenlet::State::running || g->wait_seq_ != seq) return;  // a stale wakeup
  ++g->wait_seq_;
  g->timed_out_ = timed_out;
  g->hub_->resume(g, Resume::wake);  // the observer reads timed_out_ and the wait
}

[[gnu::always_inline]] inline bool Hub::park(const WaitToken& token, const char* reason,
                                             const Waitable* object,
                                             std::optional<std::int64_t> deadline_ns,
                                             TimerPriority deadline_priority) {
  if (deadline_ns) return park_until(token, reason, object, *deadline_ns, deadline_priority);
  // No deadline: nothing to arm or disarm (the common case; kept lean).
  Greenlet* g = current_;
  TENDRIL_ASSERT(g == token.greenlet && g->wait_seq_ == token.seq, "park() with a stale token");
  g->wait_reason_ = reason;
  g->wait_object_ = object;
  switch_to_hub();
  g->wait_reason_ = nullptr;
  g->wait_object_ = nullptr;
  if (g->pending_throw_) [[unlikely]] {
    rethrow_pending(g);
  }
  return true;
}

inline WaitToken Hub::begin_wait(const char* api) {
  Greenlet* g = current_;
  if (g == nullptr) detail::throw_not_in_greenlet(api);
  return WaitToken{g, ++g->wait_seq_};
}

inline std::uint64_t Hub::key_of(const Callback& cb) noexcept {
  if (cb.fn == &Hub::yield_cb || cb.fn == &Hub::wake_cb || cb.fn == &Hub::timeout_cb ||
      cb.fn == &Greenlet::start_cb || cb.fn == &Greenlet::notify_cb) {
    return static_cast<const Greenlet*>(cb.obj)->id();
  }
  return identify(cb).key();
}

inline Callback Hub::yield_callback(const WaitToken& token) {
  token.greenlet->add_ref();
  return Callback{&Hub::yield_cb, token.greenlet, token.seq};
}

inline Callback Hub::wake_callback(const WaitToken& token) {
  token.greenlet->add_ref();
  Hub* hub = token.greenlet->hub_;
  ++hub->pending_wakes_;  // see wake_cb: another wakeup may end the wait first
  if (token.greenlet->wait_seq_ != token.seq) hub->note_stale_possible();  // ended already
  return Callback{&Hub::wake_cb, token.greenlet, token.seq};
}

// make_greenlet<G>(args...) creates an unstarted G (a Greenlet subclass) on the running hub.
template <class G, class... Args>
Ref<G> make_greenlet(Args&&... args) {
  static_assert(std::is_base_of_v<Greenlet, G>, "make_greenlet<G>: G must derive from Greenlet");
  Ref<G> g(new G(std::forward<Args>(args)...));
  g->heap_allocated_ = true;
  return g;
}

// Task<T> is a greenlet running a function that returns T; what spawn() returns.
template <class T>
class Task : public Greenlet {
 public:
  using Greenlet::Greenlet;
  // get() waits until the task has finished (at most timeout, else throws Timeout) and returns
  // its value, or rethrows its exception; throws NoValue if it was killed by GreenletExit.
  T& get(std::optional<Duration> timeout = std::nullopt) {
    wait_for_result(timeout, "Task::get");
    if (!value_) throw NoValue("tendril: " + describe() + " was killed and has no value");
    return *value_;
  }
  // value() is the result once successful, else empty (gevent's .value).
  const std::optional<T>& value() const noexcept { return value_; }

 protected:
  std::optional<T> value_;
};

// Task<void> is a greenlet running a function that returns nothing.
template <>
class Task<void> : public Greenlet {
 public:
  using Greenlet::Greenlet;
  // get() waits until the task has finished (at most timeout, else throws Timeout) and rethrows
  // its exception if it failed.
  void get(std::optional<Duration> timeout = std::nullopt) {
    wait_for_result(timeout, "Task::get");
  }
};

namespace detail {

// FnTask runs a stored callable as the greenlet's body.
template <class T, class F>
class FnTask final : public Task<T> {
 public:
  FnTask(std::string name, F fn) : Task<T>(std::move(name)), fn_(std::move(fn)) {}

 protected:
  void run() override {
    if constexpr (std::is_void_v<T>) {
      fn_();
    } else {
      this->value_.emplace(fn_());
    }
  }

 private:
  F fn_;
};

template <class F, class... Args>
auto bind_args(F&& f, Args&&... args) {
  if constexpr (sizeof...(Args) == 0) {
    return std::decay_t<F>(std::forward<F>(f));
  } else {
    return
        [f = std::forward<F>(f), ... args = std::forward<Args>(args)]() mutable -> decltype(auto) {
          return std::invoke(f, args...);
        };
  }
}

template <class Fn>
using result_of_t = std::decay_t<std::invoke_result_t<Fn&>>;

template <class F>
Ref<Task<result_of_t<F>>> new_task(std::string name, F fn) {
  using T = result_of_t<F>;
  return make_greenlet<FnTask<T, F>>(std::move(name), std::move(fn));
}

}  // namespace detail

// spawn(f, args...) creates a greenlet running f(args...) and starts it (gevent.spawn); args are
// copied. Call it inside run(); throws UsageError otherwise.
template <class F, class... Args>
requires std::invocable < std::decay_t<F>
&, std::decay_t<Args>&... > auto spawn(F&& f, Args&&... args) {
  auto g = detail::new_task(std::string(),
                            detail::bind_args(std::forward<F>(f), std::forward<Args>(args)...));
  g->start();
  return g;
}

// spawn(name, f, args...) is spawn() with a name for reports and traces.
template <class F, class... Args>
requires std::invocable < std::decay_t<F>
&, std::decay_t<Args>&... > auto spawn(std::string name, F&& f, Args&&... args) {
  auto g = detail::new_task(std::move(name),
                            detail::bind_args(std::forward<F>(f), std::forward<Args>(args)...));
  g->start();
  return g;
}

// make_task(f, args...) creates a greenlet that will run f(args...) without starting it (gevent's
// Greenlet(f, *args)); start it with start() or start_later(), or kill it unstarted. args are
// copied. Call it inside run(); throws UsageError otherwise.
template <class F, class... Args>
requires std::invocable < std::decay_t<F>
&, std::decay_t<Args>&... > auto make_task(F&& f, Args&&... args) {
  return detail::new_task(std::string(),
                          detail::bind_args(std::forward<F>(f), std::forward<Args>(args)...));
}

// make_task(name, f, args...) is make_task() with a name for reports and traces.
template <class F, class... Args>
requires std::invocable < std::decay_t<F>
&, std::decay_t<Args>&... > auto make_task(std::string name, F&& f, Args&&... args) {
  return detail::new_task(std::move(name),
                          detail::bind_args(std::forward<F>(f), std::forward<Args>(args)...));
}

// spawn_later(delay, f, args...) creates a greenlet and starts it after delay (a timer).
template <class F, class... Args>
requires std::invocable < std::decay_t<F>
&, std::decay_t<Args>&... > auto spawn_later(Duration delay, F&& f, Args&&... args) {
  auto g = detail::new_task(std::string(),
                            detail::bind_args(std::forward<F>(f), std::forward<Args>(args)...));
  g->start_later(delay);
  return g;
}

// spawn_after(delay, f, args...) is eventlet's spawn_after: a greenlet that starts after delay
// and that cancel() stops while it has not started. A delay of zero or less starts it at once,
// as spawn() does: in eventlet spawn() is a timer of zero too, so the two keep the order they
// were called in (where gevent's spawn_later(0) runs after a later plain spawn). Returns the
// greenlet, as spawn() does.
template <class F, class... Args>
requires std::invocable < std::decay_t<F>
&, std::decay_t<Args>&... > auto spawn_after(Duration delay, F&& f, Args&&... args) {
  auto g = detail::new_task(std::string(),
                            detail::bind_args(std::forward<F>(f), std::forward<Args>(args)...));
  if (delay > Duration::zero()) {
    g->start_later(delay);
  } else {
    g->start();
  }
  return g;
}

// spawn_n(f, args...) is eventlet's spawn_n: starts f(args...) in a new greenlet and keeps no
// handle to it, and no result (a returned value is dropped): cheaper than spawn() plus join(),
// and nothing to wait on. An uncaught exception is reported like any other greenlet's (and
// fails the schedule under explore()).
template <class F, class... Args>
requires std::invocable < std::decay_t<F>
&, std::decay_t<Args>&... > void spawn_n(F&& f, Args&&... args) {
  auto body = detail::bind_args(std::forward<F>(f), std::forward<Args>(args)...);
  if constexpr (std::is_void_v<std::invoke_result_t<decltype(body)&>>) {
    detail::new_task(std::string(), std::move(body))->start();
  } else {
    detail::new_task(std::string(), [b = std::move(body)]() mutable { (void)b(); })->start();
  }
}

namespace detail {
// throw_negative_sleep() throws sleep()'s UsageError for a negative duration of ns nanoseconds.
[[noreturn]] void throw_negative_sleep(long double ns);
// sleep_nonzero() is sleep(d) for d other than zero (sleep0(), in hub.hpp, is the rest).
void sleep_nonzero(Duration d);
}  // namespace detail

// sleep(d) suspends the calling greenlet for d of hub time. sleep(0) yields: every greenlet that
// was already ready runs before the caller resumes (gevent). Throws UsageError for a negative
// duration or when called outside a greenlet.
inline void sleep(Duration d) {
  if (d == Duration::zero()) {
    detail::sleep0();
  } else {
    detail::sleep_nonzero(d);
  }
}
template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> d) {
  // Saturate instead of overflowing: sleep(hours::max()) sleeps "forever", not a negative time,
  // and a negative duration of any size is refused (not wrapped into a long sleep).
  using Wide = std::chrono::duration<long double, std::nano>;
  if (d < std::chrono::duration<Rep, Period>::zero()) {
    detail::throw_negative_sleep(std::chrono::duration_cast<Wide>(d).count());
  } else if (std::chrono::duration_cast<Wide>(d) >=
             std::chrono::duration_cast<Wide>(Duration::max())) {
    sleep(Duration::max());
  } else {
    sleep(std::chrono::ceil<Duration>(d));
  }
}

// blocking_call(f) runs f(), a call with no cooperative form, without stalling other greenlets
// on a real hub (a thread pool), and returns its result or rethrows its exception (see
// Hub::run_blocking). Call it from a greenlet.
template <class F>
auto blocking_call(F&& f) -> std::decay_t<decltype(f())> {
  using R = std::decay_t<decltype(f())>;
  if constexpr (std::is_void_v<R>) {
    current_hub("tendril::blocking_call").run_blocking([&] { f(); });
  } else {
    std::optional<R> result;
    current_hub("tendril::blocking_call").run_blocking([&] { result.emplace(f()); });
    return std::move(*result);
  }
}

// getcurrent() is the running greenlet, or nullptr outside any greenlet.
Greenlet* getcurrent() noexcept;

// now() is the running hub's time since its start (SimHub: virtual time).
Duration now();

// compute_for(d) says "this code computes for d without yielding": nothing else runs meanwhile,
// and timers that come due (a TimeoutScope's, say) fire at the caller's next wait, as in gevent
// when code burns CPU. SimHub advances its virtual clock by d at once (so a simulated program's
// CPU-bound work costs virtual time, deterministically); LibevHub blocks the thread for d.
// Throws UsageError for a negative duration or with no running hub.
void compute_for(Duration d);

// random_below(n) draws a number in [0, n) from the running hub's choice stream (SimHub: its
// Chooser, so seeded and replayable); n must be at least 1.
std::uint32_t random_below(std::uint32_t n);

// GreenletRefs is a range of Ref<G> for some greenlet type G (a vector, span or array of them).
template <class R>
concept GreenletRefs = std::ranges::forward_range<R> && requires(std::ranges::range_value_t<R> r) {
  { r.get() } -> std::convertible_to<Greenlet*>;
};

// joinall() waits until every greenlet in the list is dead or timeout passes, and returns the ones
// that finished (gevent's joinall): those already dead first, in list order, then in the order
// they died; the result has the list's own element type (`std::vector<Ref<Task<int>>>` in, the
// same type out). With raise_error, it returns early by rethrowing the first failure it sees, in
// that order, as soon as it sees it. Call it from a greenlet (unless all are dead already).
template <GreenletRefs R>
auto joinall(const R& greenlets, std::optional<Duration> timeout = std::nullopt,
             bool raise_error = false) -> std::vector<std::ranges::range_value_t<R>> {
  std::vector<std::ranges::range_value_t<R>> refs(std::ranges::begin(greenlets),
                                                  std::ranges::end(greenlets));
  std::vector<Greenlet*> raw;
  raw.reserve(refs.size());
  for (const auto& g : refs) raw.push_back(g.get());
  std::vector<std::ranges::range_value_t<R>> done;
  for (std::size_t i : detail::joinall_indexes(raw, timeout, raise_error)) done.push_back(refs[i]);
  return done;
}
inline std::vector<Ref<Greenlet>> joinall(std::initializer_list<Ref<Greenlet>> greenlets,
                                          std::optional<Duration> timeout = std::nullopt,
                                          bool raise_error = false) {
  return joinall(std::span<const Ref<Greenlet>>(greenlets.begin(), greenlets.size()), timeout,
                 raise_error);
}

// killall() kills every greenlet in the list (never-started ones at once, the others through one
// queued callback, in list order); with block, waits until all are dead or timeout passes.
void killall(std::span<const Ref<Greenlet>> greenlets, std::exception_ptr exception = nullptr,
             bool block = true, std::optional<Duration> timeout = std::nullopt);
template <GreenletRefs R>
void killall(const R& greenlets, std::exception_ptr exception = nullptr, bool block = true,
             std::optional<Duration> timeout = std::nullopt) {
  std::vector<Ref<Greenlet>> all;
  for (const auto& g : greenlets) all.emplace_back(g.get());
  killall(std::span<const Ref<Greenlet>>(all), std::move(exception), block, timeout);
}
inline void killall(std::initializer_list<Ref<Greenlet>> greenlets,
                    std::exception_ptr exception = nullptr, bool block = true,
                    std::optional<Duration> timeout = std::nullopt) {
  killall(std::span<const Ref<Greenlet>>(greenlets.begin(), greenlets.size()), exception, block,
          timeout);
}

// run(hub, f) binds hub to this thread, runs f as the main greenlet and returns its result (or
// rethrows its exception). If main blocks with nothing left that could wake it, Deadlock is thrown
// into main. When main returns, greenlets still alive are killed (GreenletExit) so that their
// destructors run. Throws UsageError if a hub is already running on this thread.
template <class F>
auto run(Hub& hub, F&& f) -> detail::result_of_t<F> {
  HubBinding binding(hub);
  auto main = detail::new_task("main", std::decay_t<F>(std::forward<F>(f)));
  hub.run_main(*main);
  if constexpr (std::is_void_v<detail::result_of_t<F>>) {
    main->get();
  } else {
    return std::move(main->get());
  }
}

}  // namespace tendril
