// SPDX-License-Identifier: Apache-2.0
// tendril/sched/hub.hpp: the Hub seam. A hub owns time, timers, randomness and the ready queue;
// SimHub (sim/) and LibevHub (realio/) implement it, and everything in sched/ is written against
// it. Modelled on Boost.Fiber's `algorithm`: few pure virtuals, each with a contract.
#pragma once

#include <boost/context/fiber.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tendril/sched/chooser.hpp"
#include "tendril/sched/detail/switch.hpp"
#include "tendril/sched/observer.hpp"
#include "tendril/sched/ref.hpp"
#include "tendril/sched/stack.hpp"

namespace tendril {

class Greenlet;
class Hub;
struct Callback;
namespace detail {
// sleep0() is sleep(0) on the bound hub (see tendril::sleep and Hub::sleep0).
void sleep0();
// queue_unlock_cb() is the callback of a queue's unlock pass (queue.cpp) and linkable_notify_cb()
// that of a Linkable's notification (linkable.cpp): declared here so that the hub tells them
// apart by a comparison each (Hub::is_pass).
void queue_unlock_cb(Callback& cb, bool run);
void linkable_notify_cb(Callback& cb, bool run);
}  // namespace detail
namespace net {
class Backend;
}  // namespace net

// Duration is the unit of every tendril time value: integer nanoseconds.
using Duration = std::chrono::nanoseconds;

// Callback is one unit of work for the hub: a queued wakeup, a start, a kill delivery, a link
// notification or a timer action. fn(cb, true) runs it; fn(cb, false) discards it (releasing what
// it holds) without running. It is three words so the ready queue never allocates per item.
struct Callback {
  using Fn = void (*)(Callback& self, bool run);
  Fn fn = nullptr;
  void* obj = nullptr;
  std::uint64_t arg = 0;

  // invoke() runs the callback once; discard() drops it unrun. Exactly one of them is called.
  void invoke() { fn(*this, true); }
  void discard() noexcept { fn(*this, false); }
  // from_function() wraps an arbitrary callable (one heap allocation); it runs on the hub's own
  // stack, so it must not block.
  static Callback from_function(std::function<void()> f);
};

// ReadyQueue is the FIFO of callbacks that decides who runs next (gevent's run_callback queue).
// A growable ring buffer; take(i) removes from the middle for policies that pick other than 0.
class ReadyQueue {
 public:
  ReadyQueue() = default;
  ~ReadyQueue();
  ReadyQueue(const ReadyQueue&) = delete;
  ReadyQueue& operator=(const ReadyQueue&) = delete;

  // push() appends; never fails short of memory exhaustion.
  void push(const Callback& cb) {
    if (size_ == capacity_) grow();
    slots_[(head_ + size_) & mask_] = cb;
    ++size_;
  }
  // take(i) removes and returns the i-th oldest callback (0 = FIFO); requires i < size().
  Callback take(std::size_t i) {
    if (i == 0) {
      Callback cb = slots_[head_];
      head_ = (head_ + 1) & mask_;
      --size_;
      return cb;
    }
    return take_middle(i);
  }
  // rotate(cb) is take(0) then push(cb) in one step, never growing: the oldest callback comes
  // out (returned) and cb goes in at the back. Requires !empty().
  Callback rotate(const Callback& cb) noexcept {
    const std::size_t head = head_;
    Callback* const slots = slots_.data();
    const Callback front = slots[head];
    slots[(head + size_) & mask_] = cb;  // the front's own slot when the ring is full
    head_ = (head + 1) & mask_;
    return front;
  }
  // front() is peek(0); the non-const one lets the hub keep a pass's progress in the front
  // callback (see Hub::run_direct).
  const Callback& front() const noexcept { return slots_[head_]; }
  Callback& front() noexcept { return slots_[head_]; }
  // untake(cb) puts back at the front a callback just taken from there (take(0)): it never grows.
  void untake(const Callback& cb) noexcept {
    head_ = (head_ - 1) & mask_;
    slots_[head_] = cb;
    ++size_;
  }
  // peek(i) is the i-th oldest callback, without removing it; requires i < size().
  const Callback& peek(std::size_t i) const noexcept { return slots_[(head_ + i) & mask_]; }
  // for_each() calls f(callback) for the n oldest callbacks in order (n <= size()); the ring's
  // bounds are read once, so policies that weigh every alternative stay in a tight loop.
  template <class F>
  void for_each(std::size_t n, F&& f) const {
    const Callback* slots = slots_.data();
    const std::size_t mask = mask_;
    const std::size_t head = head_;
    for (std::size_t i = 0; i < n; ++i) f(slots[(head + i) & mask]);
  }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  // remove_if() discards, unrun, every callback for which pred(callback) is true, keeping the
  // others in order; returns how many were discarded. The discards run after the queue is
  // consistent again (a discard may release the last reference to a greenlet).
  template <class Pred>
  std::size_t remove_if(Pred pred) {
    const std::size_t mask = mask_;
    std::size_t first = 0;  // a read-only pass first: usually nothing is removed
    while (first < size_ && !pred(slots_[(head_ + first) & mask])) ++first;
    if (first == size_) return 0;
    std::vector<Callback> gone;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < size_; ++i) {
      const Callback cb = slots_[(head_ + i) & mask];
      if (pred(cb)) {
        gone.push_back(cb);
      } else {
        slots_[(head_ + kept++) & mask] = cb;
      }
    }
    size_ = kept;
    for (Callback& cb : gone) cb.discard();
    return gone.size();
  }
  // clear() discards every queued callback unrun, oldest first.
  void clear() noexcept;

 private:
  void grow();
  Callback take_middle(std::size_t i);
  std::vector<Callback> slots_;  // capacity is a power of two
  std::size_t capacity_ = 0;     // slots_.size(), kept apart: no division by sizeof on the hot path
  std::size_t mask_ = 0;         // capacity_ - 1 (0 before the first push)
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

// TimerId names an armed timer; 0 never names one.
using TimerId = std::uint64_t;

// TimerPriority orders timers that are due in the same loop turn: every normal one fires before
// any low one (libev's watcher priorities; gevent arms Timeout at priority -1, so a sleep that
// ends at the same instant as a Timeout wins).
enum class TimerPriority : std::uint8_t { normal, low };

// Waitable is anything a greenlet can block on; describe() names it in deadlock reports.
class Waitable {
 public:
  virtual std::string describe() const = 0;
  // object_id() is the object's stable number on its hub (creation order), 0 if it has none.
  virtual std::uint64_t object_id() const noexcept { return 0; }
  // as_greenlet() is the object as a greenlet (a join waits on one), or nullptr.
  virtual const Greenlet* as_greenlet() const noexcept { return nullptr; }
  // holder() is the greenlet holding the object (a Lock's), or nullptr: deadlock reports and
  // traces name it, and its wait-for edges close cycles.
  virtual const Greenlet* holder() const noexcept { return nullptr; }

 protected:
  ~Waitable() = default;
};

// WaitToken identifies one wait of one greenlet; a wakeup for an older wait is ignored.
struct WaitToken {
  Greenlet* greenlet = nullptr;
  std::uint64_t seq = 0;
};

// HubOptions configures the parts of a hub that sched/ owns.
struct HubOptions {
  StackOptions stack;
};

// ErrorHandler receives each uncaught greenlet exception once, when the greenlet dies (gevent's
// Hub.handle_error). It runs on the hub's stack and must not block.
using ErrorHandler = std::function<void(Greenlet& greenlet, std::exception_ptr error)>;

// ErrorOrigin says what failed, for an error handler that wants to know (gevent passes a context):
// a greenlet; a greenlet running a link() callback (greenlet.link_of() is the linked one); or a
// rawlink() callback of `greenlet`, which itself may have ended well.
enum class ErrorOrigin : std::uint8_t { greenlet, link, rawlink };

// OriginErrorHandler is an ErrorHandler that is also told the ErrorOrigin.
using OriginErrorHandler =
    std::function<void(Greenlet& greenlet, std::exception_ptr error, ErrorOrigin origin)>;

// Hub is the seam between the greenlet core and a loop. One hub runs on one thread at a time,
// bound by run(); only post_threadsafe() may be called from another thread.
class Hub {
 public:
  explicit Hub(HubOptions options = {});
  virtual ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // ---- The seam: what a loop implements. ----

  // now_ns() is the hub's clock in nanoseconds (SimHub: virtual, starting at 0; LibevHub:
  // monotonic). It never goes backwards.
  virtual std::int64_t now_ns() const = 0;
  // start_timer() arms cb to run at deadline_ns (clamped to now). Due timers fire normal priority
  // first, then low; within a priority in deadline order, equal deadlines in arming order unless
  // the hub's policy chooses otherwise. A timer armed while timers are firing fires no earlier
  // than the next loop turn.
  virtual TimerId start_timer(std::int64_t deadline_ns, Callback cb,
                              TimerPriority priority = TimerPriority::normal) = 0;
  // cancel_timer() discards a timer that has not fired; a no-op for a fired or cancelled one.
  virtual void cancel_timer(TimerId id) noexcept = 0;
  // choose(n) draws a number in [0, n) for n >= 1 from the hub's one source of nondeterminism
  // (SimHub: its Chooser, so the answer is recorded and replayable).
  virtual std::uint32_t choose(std::uint32_t n) = 0;
  // hub_name() names the kind of hub ("SimHub", "LibevHub") in traces and reports.
  virtual const char* hub_name() const noexcept { return "Hub"; }
  // position() describes where the run is (time, step, seed) for assertion messages and reports.
  virtual std::string position() const = 0;
  // post_threadsafe() is the one member safe to call from any thread: it queues fn to run on the
  // hub's thread as a callback (it must not block) and wakes the loop. SimHub refuses it with
  // UsageError: a simulated run is single-threaded and deterministic.
  virtual void post_threadsafe(std::function<void()> fn);
  // run_blocking() runs work, a call with no cooperative form (name resolution, file I/O), and
  // blocks the calling greenlet until it is done, rethrowing its exception. LibevHub runs it on a
  // small thread pool while other greenlets go on; SimHub runs it inline, in no virtual time.
  virtual void run_blocking(const std::function<void()>& work);
  // compute_for() is the running context computing for d without yielding (see
  // tendril::compute_for): the base blocks the thread for d; SimHub advances its virtual clock.
  virtual void compute_for(Duration d);
  // net() is the hub's TCP backend (tendril/net.hpp); a hub without one throws UsageError.
  virtual net::Backend& net();

 protected:
  // run_loop() runs ready callbacks, due timers and I/O, in gevent's order, until stop_requested()
  // or until nothing is ready and nothing pending could make anything ready. It runs on the hub's
  // own (native) stack and may throw HubError to abort the run.
  virtual void run_loop() = 0;

 public:
  // ---- The greenlet core: shared by every hub. ----

  // schedule() appends cb to the ready queue; it never switches.
  void schedule(const Callback& cb) { ready_.push(cb); }
  // current() is the running greenlet, or nullptr on the hub's own stack.
  Greenlet* current() const noexcept { return current_; }
  // main() is the greenlet run() started, while run() is active.
  Greenlet* main() const noexcept { return main_; }
  // live_greenlets() counts greenlets started (or scheduled to start) and not yet dead.
  std::size_t live_greenlets() const noexcept { return live_count_; }
  // serial() numbers hubs in creation order across the process (from 1; never reused), so a
  // greenlet can tell its hub from another built later at the same address.
  std::uint64_t serial() const noexcept { return serial_; }
  // greenlets_created() counts greenlets created on this hub (main included).
  std::uint64_t greenlets_created() const noexcept { return next_id_ - 1; }
  // steps() counts callbacks and timers the loop has run; the unit of a simulated run's length.
  std::uint64_t steps() const noexcept { return steps_; }
  // direct_steps() counts the steps among them that a greenlet took itself, switching straight to
  // the next greenlet (or staying, when the wakeup was its own) instead of through the hub's
  // stack (see run_direct). For benchmarks and tests: a run's order and steps() are the same
  // either way.
  std::uint64_t direct_steps() const noexcept { return steps_ - loop_steps_; }
  // next_entropy_draw() numbers the random-byte requests of this run (getrandom through
  // tendril::green), from 0; a reset hub starts again at 0.
  std::uint64_t next_entropy_draw() noexcept { return entropy_draws_++; }
  // stacks() is this hub's stack pool.
  StackPool& stacks() noexcept { return stacks_; }

  // set_observer() installs the observer that hears every switch, block, wakeup, spawn, exit and
  // kill (tendril/sched/observer.hpp; trace::Tracer records them); nullptr removes it. The hub
  // does not own it. Install it before run() or from the hub's stack, not mid-switch. Throws
  // UsageError in a build configured with -DTENDRIL_TRACE_HOOK=OFF (which has no hook).
  void set_observer(Observer* observer);
  // observer() is the installed observer, or nullptr.
  Observer* observer() const noexcept { return observer_; }

  // set_error_handler() replaces the default report (one line on stderr) of uncaught greenlet
  // exceptions; pass nullptr to restore the default.
  void set_error_handler(ErrorHandler handler);
  // set_error_handler(OriginErrorHandler) is the same for a handler that takes the ErrorOrigin.
  void set_error_handler(OriginErrorHandler handler);
  // set_error_handler(nullptr) restores the default report.
  void set_error_handler(std::nullptr_t) noexcept { on_error_ = nullptr; }
  // report_error() hands an uncaught exception to the error handler; never throws. For a
  // greenlet running a link, ErrorOrigin::greenlet is reported as ErrorOrigin::link.
  void report_error(Greenlet& greenlet, std::exception_ptr error,
                    ErrorOrigin origin = ErrorOrigin::greenlet) noexcept;
  // fail_run() ends the active run() as soon as the callback now running returns: the greenlets
  // still alive are killed at the waits they are in, a wakeup already queued for one
  // notwithstanding (every other greenlet first, main last, so that their unwinding never touches
  // main's dead locals), and run() throws `error`. The first call of a run wins; outside a run it
  // does nothing. Call it from the hub's thread, from a greenlet, a callback or an error handler
  // (explore() fails a schedule this way when a greenlet dies with an exception).
  void fail_run(std::exception_ptr error) noexcept;
  // run_failed() says whether fail_run() was called in the active run.
  bool run_failed() const noexcept { return static_cast<bool>(run_failure_); }

  // begin_wait() starts a new wait of the current greenlet and returns its token. For primitive
  // authors: arm the wakeups with wake_callback(token), then park(token, ...). Call it only from a
  // greenlet.
  WaitToken begin_wait(const char* api);
  // wake_callback() makes a callback that resumes the token's greenlet if it is still in that
  // wait (then the wait returns true); any later wakeup for the same wait is ignored.
  static Callback wake_callback(const WaitToken& token);
  // yield_callback() is wake_callback() for sleep(0)'s own wakeup, which the hub tells apart
  // (a yield is not progress: see SimOptions::livelock_steps).
  static Callback yield_callback(const WaitToken& token);
  // note_stale_possible() tells the hub that a callback it has queued may now do nothing (see
  // is_stale), so that SimHub looks before its next choice. tendril's own primitives call it; a
  // primitive author needs it only for a callback that is not a wake_callback().
  void note_stale_possible() noexcept { ++stale_marks_; }
  // park() suspends the current greenlet in the token's wait until a wakeup runs (returns true) or
  // deadline_ns passes (returns false). It throws whatever kill() or a timeout scope delivered.
  // reason ("sleep", "join", "Event.wait"; a string literal: observers keep the pointer) and
  // object name the wait in deadlock reports and traces. A
  // deadline is a timeout (low priority, like gevent's Timeout) unless the wait is a sleep.
  bool park(const WaitToken& token, const char* reason, const Waitable* object,
            std::optional<std::int64_t> deadline_ns = std::nullopt,
            TimerPriority deadline_priority = TimerPriority::low);
  // next_object_id() numbers primitives (events, queues, locks) in creation order on this hub.
  std::uint64_t next_object_id() noexcept { return next_object_id_++; }
  // key_of() is identify(cb).key(), with the common case (a callback that resumes or starts a
  // greenlet) inline: policies that weigh every alternative call it for each.
  static std::uint64_t key_of(const Callback& cb) noexcept;
  // wake_now() resumes the token's greenlet at once if it is still in that wait, and returns when
  // it blocks again; for callbacks, which run on the hub's stack.
  static void wake_now(const WaitToken& token) { wake(token.greenlet, token.seq, false); }
  // raise_now() raises error in g at its blocking point at once (or kills it if never started);
  // for callbacks, which run on the hub's stack.
  static void raise_now(Greenlet* g, const std::exception_ptr& error) { deliver(g, error); }
  // throw_into() queues a callback that raises error in g at its blocking point (kill delivery);
  // if g is dead by then nothing happens. Then, if waker is a valid token, it is woken.
  void throw_into(Greenlet& g, std::exception_ptr error, const WaitToken& waker = {});

  // throw_into_all() is throw_into() for several greenlets in one callback (killall).
  void throw_into_all(std::vector<Ref<Greenlet>> targets, std::exception_ptr error,
                      const WaitToken& waker = {});

  // verify() checks the core's invariants (the live list, the current greenlet) and aborts with
  // TENDRIL_ASSERT on a broken one; SimOptions::verify_each_step calls it after every step.
  virtual void verify() const;
  // wait_until_idle() blocks the calling greenlet until the loop has nothing left to do (no
  // callback, no timer); then it resumes instead of a Deadlock being raised (tendril::wait()).
  void wait_until_idle();
  // deadlock_report() lists every blocked greenlet, what it waits on and who holds that (a
  // Lock's holder), then the first wait-for cycle among them, if any.
  std::string deadlock_report() const;
  // run_main() runs main to completion on this hub (see tendril::run); rethrows its exception.
  void run_main(Greenlet& main);
  // main_exception_leaving() is called (by the unwinder, see unwind_barrier.cpp) when an
  // exception is about to leave main's function, before any of main's locals is destroyed: if
  // other greenlets are alive, main parks here while the hub kills them, then returns. It does
  // nothing on another greenlet, outside a run, or when tendril is ending the run itself.
  void main_exception_leaving() noexcept;

 protected:
  // stop_requested() tells run_loop() to return as soon as the current callback finishes.
  bool stop_requested() const noexcept { return stop_; }
  // count_step() is called by run_loop() once per callback or timer run.
  void count_step() noexcept {
    ++steps_;
    ++loop_steps_;
  }
  // is_yield() says whether cb resumes a greenlet parked in sleep(0), a step that is no progress
  // (SimHub's livelock check); yielder() is that greenlet.
  static bool is_yield(const Callback& cb) noexcept { return cb.fn == &Hub::yield_cb; }
  static const Greenlet& yielder(const Callback& cb) noexcept {
    return *static_cast<const Greenlet*>(cb.obj);
  }
  // is_plain_resume() says whether cb only resumes a parked greenlet (a wake_callback() or a
  // yield_callback()): a loop that runs it with run_direct() lets the greenlet, when it parks,
  // take the next such callback itself and switch straight to its greenlet.
  static bool is_plain_resume(const Callback& cb) noexcept {
    return cb.fn == &Hub::yield_cb || cb.fn == &Hub::wake_cb;
  }
  // is_pass() says whether cb is a pass that wakes waiters one after the other, a queue's unlock
  // pass or a Linkable's notification, which run_direct() also lets the greenlets carry on.
  static bool is_pass(const Callback& cb) noexcept {
    return cb.fn == &detail::queue_unlock_cb || cb.fn == &detail::linkable_notify_cb;
  }
  // run_direct() runs a callback just taken from the front of the ready queue, letting the
  // greenlets it resumes go on without the hub: a greenlet that parks and finds the next step at
  // the front of the queue, within the step budget and the livelock bound below, takes it (one
  // step, as the loop would) and switches straight to the greenlet it wakes; the last one
  // switches back here. The steps a greenlet takes are plain resumes and passes, queues' unlock
  // passes and Linkables' notifications (the pass stays at the front of the queue while a
  // greenlet it woke runs, and that greenlet carries it on when it parks: take_direct_other). Any
  // other callback just runs. A loop calls it only where it would run the callbacks one after the
  // other in FIFO order with nothing between them (SimHub's FIFO policy), with no observer
  // installed (an observer hears every switch through the hub) and nothing asking it to stop.
  void run_direct(Callback& cb) {
    if (!is_plain_resume(cb)) [[unlikely]] {
      return run_direct_other(cb);
    }
    arm_direct();
    cb.invoke();
    // The chain may have ended here in the middle of a pass (a greenlet it woke died, or the
    // pass has an item to move, a rawlink to run or a notification to queue): the pass goes on
    // before anything else, as on the hub's stack.
    if (!ready_.empty() && is_pass(ready_.front())) [[unlikely]] {
      finish_pass();
    }
    direct_armed_ = direct_off;
  }
  // is_stale() says whether running cb would do nothing now: the wakeup of a wait that has ended
  // (a kill, a timeout or another wakeup ended it first), the start of a greenlet killed before
  // it started, a kill whose every target is dead, a greenlet's death notification with no link
  // left, a primitive's notification with no waiter left (or, for a semaphore, no permit), a
  // queue's unlock with nothing to move. SimHub leaves such callbacks out of its choices (a choice
  // of one would be no choice at all). Only a few events make them, and each calls
  // note_stale_possible(); stale_marks() counts those events, so SimHub scans its queue only when
  // the count changed since its last scan.
  static bool is_stale(const Callback& cb) noexcept;  // inline in greenlet.hpp
  std::uint64_t stale_marks() const noexcept { return stale_marks_; }
  // discard_ready() drops every queued callback unrun; hubs call it on destruction.
  void discard_ready() noexcept { ready_.clear(); }
  // begin_run() is called by run_main() before main starts (for per-run budgets).
  virtual void begin_run() {}
  // begin_teardown() / end_teardown() bracket the killing of what is left when a run ends (see
  // run_main): SimHub answers the choices in between FIFO and records none, so that teardown is
  // deterministic and stays out of the explored schedule.
  virtual void begin_teardown() {}
  virtual void end_teardown() noexcept {}
  // reset_core() restarts the greenlet and object counters and the step count, for a hub that
  // starts a new, independent run (SimHub::reset); requires no run active and no live greenlet.
  void reset_core();

  ReadyQueue ready_;
  // A loop's budgets, kept here so that a greenlet taking the next step itself (run_direct) keeps
  // them as the loop would: a step past step_limit_ is refused (the loop throws), and a sleep(0)
  // resumption more than livelock_limit_ steps after progress_step_ (the last step that was not
  // one) is a livelock. A hub without them leaves them at "never".
  std::uint64_t step_limit_ = UINT64_MAX;
  std::uint64_t progress_step_ = 0;
  std::uint64_t livelock_limit_ = UINT64_MAX;
  // yield_bound_: the first step at which a sleep(0) resumption taken directly would pass one of
  // those bounds, min(step_limit_, progress_step_ + livelock_limit_); kept by run_direct() and
  // by the direct steps that move progress_step_ (nothing else runs meanwhile).
  std::uint64_t yield_bound_ = 0;
  // arm_direct() arms the greenlets for direct steps (see run_direct). Dense stacks checked at
  // every switch out take the general path (switch_to_hub checks). Whether sleep0() prefetches
  // is settled here, from the live count now: a hint only.
  void arm_direct() noexcept {
    direct_armed_ = stacks_.checks_switches()          ? direct_checked
                    : live_count_ >= prefetch_min_live ? direct_fast_prefetch
                                                       : direct_fast;
    set_yield_bound();
  }
  void set_yield_bound() noexcept {
    std::uint64_t livelock_at = 0;
    if (__builtin_add_overflow(progress_step_, livelock_limit_, &livelock_at)) {
      livelock_at = UINT64_MAX;
    }
    yield_bound_ = step_limit_ < livelock_at ? step_limit_ : livelock_at;
  }

 private:
  friend class Greenlet;
  friend class HubBinding;
  friend Alternative identify(const Callback& cb) noexcept;
  friend Action action_of(const Callback& cb) noexcept;

  // The switch path (resume, switch_to_hub, wake, park without a deadline) is inline, in
  // greenlet.hpp: every call frame between a switch and the code it returns to costs a
  // mispredicted return (the CPU's return-address stack holds the other stack's calls), so the
  // frames around a switch are kept to a minimum. Their rare parts are out of line and cold.

  // resume() switches from the hub's stack into g and returns when g switches back; why tells
  // the observer what resumed it (wake: its wait ended; the observer reads timed_out_).
  void resume(Greenlet* g, Resume why);
  [[noreturn, gnu::cold, gnu::noinline]] void resume_while_running(Greenlet* g) const;
  [[gnu::cold, gnu::noinline]] void finish_dead(Greenlet* g);
  // The observer's side of resume(), out of line so the hot path stays small.
  [[gnu::cold, gnu::noinline]] static void observe_resume(Observer* observer, Greenlet* g,
                                                          Resume why);
  [[gnu::cold, gnu::noinline]] static void observe_return(Observer* observer, Greenlet* g);
  // switch_to_hub() switches from the current greenlet back to the hub's stack, or, when the
  // hub's frame is in run_direct() and take_direct() hands over the next greenlet, straight to
  // that one (or nowhere, when it is the current greenlet's own wakeup).
  void switch_to_hub();
  // sleep0() is sleep(0) of the current greenlet (tendril::sleep's common case). Armed for direct
  // switches (run_direct), it moves the front of the ready queue to the greenlet it resumes and
  // its own wakeup to the back in one step (ReadyQueue::rotate) and switches straight there:
  // the same step as pushing the wakeup and then taking the front, without the general path's
  // second look at the queue. Otherwise it queues the wakeup and parks.
  void sleep0();
  // sleep0_direct() is sleep0()'s short path, armed (the caller checked); sleep0_other() is the
  // rest: the short path after a prefetch (direct_fast_prefetch), or sleep0_queued().
  void sleep0_direct(Greenlet* g);
  [[gnu::noinline]] void sleep0_other(Greenlet* g);
  // sleep0_queued() is sleep0()'s general path for g, the current greenlet: a new wait, its
  // wakeup queued, then park().
  [[gnu::noinline]] void sleep0_queued(Greenlet* g);
  friend void detail::sleep0();
  // take_direct() takes the front of the ready queue and returns its greenlet, woken as wake()
  // would wake it, if run_direct() may go on with it; otherwise nullptr (the hub's turn).
  // take_direct_other() is its part for a front that is not a plain resume: a pass in progress
  // (a queue's unlock pass, a Linkable's notification) goes on (the greenlet that parks takes its
  // next step and switches to the waiter it wakes), and one queued starts (a step of its own),
  // unless its next step runs code only the hub's stack runs (an item's move, a rawlink, queueing
  // a notification).
  Greenlet* take_direct() noexcept;
  [[gnu::noinline]] Greenlet* take_direct_other() noexcept;
  // run_direct_other() is run_direct() for a callback that is not a plain resume: a pass (a
  // queue's unlock pass, a notification) starts at the front of the ready queue (finish_pass runs
  // it); anything else runs as the loop would run it.
  [[gnu::noinline]] void run_direct_other(Callback& cb);
  // finish_pass() runs, on the hub's stack, the pass in progress at the front of the ready queue,
  // if there is one, until it is over or a greenlet it woke carried it to the end (the greenlets
  // it wakes are armed for direct steps unless the run is stopping). start: the front is a pass
  // the loop just took (counted as its step), to start here.
  [[gnu::noinline]] void finish_pass(bool start = false);
  // switch_direct() switches from `from` (the current greenlet) to `to`.
  void switch_direct(Greenlet* from, Greenlet* to);
  // prefetch_ahead() asks the cache for the stack top of the greenlet prefetch_stack_ahead
  // places further in the ready queue and for the object of the one prefetch_object_ahead
  // places further. With thousands of greenlets switching in turn each switch otherwise waits
  // on those misses (bench/switch_scale.cpp: 1,000 greenlets 78 -> 33 ns per switch, 100,000
  // 338 -> 251, 1,000,000 496 -> 440); take_direct() calls it past prefetch_min_live live
  // greenlets, below which everything is in the cache already and the hint only costs
  // instructions (the test is 2 per direct step there; sleep0() has it settled once per
  // run_direct(), as direct_fast_prefetch, and calls it with skip 1 before its rotate).
  // skip: how many callbacks at the front are still to leave (1 in sleep0(), which prefetches
  // before its rotate).
  void prefetch_ahead(std::size_t skip) const noexcept;
  static constexpr std::size_t prefetch_stack_ahead = 2;
  static constexpr std::size_t prefetch_object_ahead = 3;
  static constexpr std::size_t prefetch_min_live = 64;
  [[gnu::noinline]] void check_dense_stack(const Greenlet* g) const;
  // park_until() is park() with a deadline; rethrow_pending() raises what kill() delivered.
  bool park_until(const WaitToken& token, const char* reason, const Waitable* object,
                  std::int64_t deadline_ns, TimerPriority deadline_priority);
  [[noreturn, gnu::cold, gnu::noinline]] static void rethrow_pending(Greenlet* g);
  // wake() resumes g if it is still in wait seq; deliver() raises error in g at its blocking
  // point (or kills it before start). Both run on the hub's stack.
  static void wake(Greenlet* g, std::uint64_t seq, bool timed_out);
  static void deliver(Greenlet* g, const std::exception_ptr& error);
  static void wake_cb(Callback& cb, bool run);
  // yield_cb() is wake_cb() for a sleep(0): its own function, so that a yield is told apart by
  // one comparison (is_yield()).
  static void yield_cb(Callback& cb, bool run);
  static void timeout_cb(Callback& cb, bool run);
  static void throw_cb(Callback& cb, bool run);
  void add_live(Greenlet* g) noexcept;
  void remove_live(Greenlet* g) noexcept;
  // teardown() kills every live greenlet but `spared` (main parked in its unwinding, or none).
  void teardown(Greenlet* spared = nullptr);
  void drain_ready();

  StackPool stacks_;
  Observer* observer_ = nullptr;
  Greenlet* current_ = nullptr;
  Greenlet* main_ = nullptr;
  boost::context::fiber native_;  // the hub's own stack while a greenlet runs
  // save_to_: where the context being left is to be stored; every switch sets it to its own
  // slot (native_ or its greenlet's ctx_), and whoever lands stores the fiber it got back there.
  // So a greenlet resumed by another one, not by the hub, still knows whose context it holds.
  boost::context::fiber* save_to_ = nullptr;
  // direct_armed_: the hub's frame is in run_direct() (see switch_to_hub); direct_fast when no
  // check runs at switches out, so that sleep0() may take its own short path, and
  // direct_fast_prefetch when it also prefetches (prefetch_ahead).
  enum : std::uint8_t { direct_off = 0, direct_checked = 1, direct_fast = 2, direct_fast_prefetch };
  std::uint8_t direct_armed_ = direct_off;
  detail::EhState native_eh_;  // the hub's C++ exception state while a greenlet runs
  const void* native_stack_bottom_ = nullptr;  // ASan bookkeeping of the hub's stack
  std::size_t native_stack_size_ = 0;
  void* tsan_native_ = nullptr;            // ThreadSanitizer's fiber of the hub's stack
  detail::EhState* eh_globals_ = nullptr;  // the running thread's C++ exception state
  Greenlet* live_head_ = nullptr;  // live greenlets in spawn order (deadlock reports, teardown)
  Greenlet* live_tail_ = nullptr;
  std::size_t live_count_ = 0;
  std::uint64_t serial_;
  std::uint64_t next_id_ = 1;
  std::uint64_t next_object_id_ = 1;
  std::uint64_t steps_ = 0;
  std::uint64_t loop_steps_ = 0;  // the steps a loop took (count_step); the rest were direct
  bool stop_ = false;
  bool running_ = false;
  std::uint64_t stale_marks_ = 0;     // events that may have left a stale callback (is_stale)
  std::uint64_t pending_wakes_ = 0;   // wake_callback()s made and not yet run or dropped
  std::uint64_t pending_throws_ = 0;  // kills queued (throw_into) and not yet delivered
  std::uint64_t entropy_draws_ = 0;   // see next_entropy_draw()
  static bool stale_other(const Callback& cb) noexcept;  // any but a wakeup
  // leaving_: main, parked in main_exception_leaving() until the others are dead; else nullptr.
  Greenlet* leaving_ = nullptr;
  std::uint64_t next_death_seq_ = 1;  // numbers greenlet deaths (joinall's order)
  OriginErrorHandler on_error_;
  // The default report prints the first errors_in_full errors of each kind (the text with its
  // numbers masked) in a run, then counts the rest and prints one line per kind when the run
  // ends (see report_error, flush_error_summary): a spawn storm past a resource limit prints a
  // few lines, not one per greenlet.
  static constexpr std::size_t errors_in_full = 3;
  struct ErrorKind {
    std::string signature;
    std::string first;        // the first one's description, for the summary
    std::uint64_t seen = 0;   // reports of this kind in this run
    std::size_t in_full = 0;  // how many are printed in full (1 for StackLimitError)
  };
  std::vector<ErrorKind> error_kinds_;
  void flush_error_summary() noexcept;
  std::vector<std::pair<Ref<Greenlet>, WaitToken>> idle_waiters_;
  std::string deadlock_report_;     // taken at a deadlock, raised in main once the others are dead
  std::exception_ptr run_failure_;  // set by fail_run(): run() throws it after teardown
};

// HubBinding binds a hub to the current thread for its lifetime (marl's bound scheduler); run()
// uses it. Throws UsageError if the thread already has a hub bound.
class HubBinding {
 public:
  explicit HubBinding(Hub& hub);
  ~HubBinding();
  HubBinding(const HubBinding&) = delete;
  HubBinding& operator=(const HubBinding&) = delete;
};

namespace detail {
// run_behind_barrier() calls fn(arg) under a frame whose personality routine calls
// Hub::main_exception_leaving() in the search phase of an exception leaving fn (main's body).
void run_behind_barrier(void (*fn)(void*), void* arg);
// sleep0_reason is the wait reason of a greenlet parked in sleep(0) (one address everywhere).
inline constexpr char sleep0_reason[] = "sleep(0)";
// The hub bound to this thread (see HubBinding); read through current_hub().
// constinit: no dynamic initialiser, so reading it needs no TLS-init check (a branch per access).
// Initial-exec: one load from the thread pointer, no TLS lookup (sleep(0) reads it every time).
// A shared libtendril_sched loaded late by dlopen() takes these 8 bytes from glibc's static TLS
// surplus, which is there for this.
extern thread_local constinit Hub* t_bound_hub [[gnu::tls_model("initial-exec")]];
[[noreturn]] void throw_no_hub(const char* api);
[[noreturn]] void throw_not_in_greenlet(const char* api);
// hub_alive() says whether the hub of that serial() is still alive (any thread).
bool hub_alive(std::uint64_t serial) noexcept;
}  // namespace detail

// current_hub() is the hub bound to this thread by run(); throws UsageError naming `api` if none.
inline Hub& current_hub(const char* api = "tendril") {
  Hub* hub = detail::t_bound_hub;
  if (hub == nullptr) detail::throw_no_hub(api);
  return *hub;
}
// current_hub_or_null() is the bound hub or nullptr.
inline Hub* current_hub_or_null() noexcept { return detail::t_bound_hub; }

}  // namespace tendril

// Hub's inline members that need the complete Greenlet (begin_wait, wake_callback) live there.
#include "tendril/sched/greenlet.hpp"
