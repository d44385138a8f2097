// SPDX-License-Identifier: Apache-2.0
// hub.cpp: the greenlet core shared by every hub: the ready queue, switching, parking, kill
// delivery, run() and its teardown, deadlock reports.
#include "tendril/sched/hub.hpp"

#include <algorithm>
#include <boost/context/fiber.hpp>
#include <cctype>
#include <cstdio>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "../green/green_hooks.h"
#include "tendril/sched/assert.hpp"
#include "tendril/sched/detail/observe.hpp"
#include "tendril/sched/detail/switch.hpp"
#include "tendril/sched/errors.hpp"
#include "tendril/sched/greenlet.hpp"
#include "tendril/sched/linkable.hpp"
#include "tendril/sched/queue.hpp"
#include "tendril/sched/timeout.hpp"

namespace tendril {
namespace detail {
void ensure_alt_stack();           // overflow.cpp
void install_terminate_handler();  // overflow.cpp
}  // namespace detail
namespace {

void function_cb(Callback& cb, bool run) {
  std::unique_ptr<std::function<void()>> fn(static_cast<std::function<void()>*>(cb.obj));
  if (run) (*fn)();
}

// A kill delivery: raise `error` in each target still alive, in order, then wake `waker`.
struct ThrowRequest {
  std::vector<Ref<Greenlet>> targets;
  std::exception_ptr error;
  WaitToken waker;
  Ref<Greenlet> waker_ref;  // keeps the waker's object alive until the request runs
};

}  // namespace

const char* to_string(ChoiceKind kind) noexcept {
  switch (kind) {
    case ChoiceKind::ready:
      return "ready";
    case ChoiceKind::timer:
      return "timer";
    case ChoiceKind::random:
      return "random";
  }
  return "?";
}

std::string Alternative::describe() const {
  if (greenlet != nullptr) return greenlet->describe();
  if (object != nullptr) return object->describe();
  if (greenlet_id != 0) return "#" + std::to_string(greenlet_id);
  return "?";
}

void ChoiceLog::name(std::uint64_t key, const Alternative& alternative) {
  if (alternative.greenlet != nullptr && key == alternative.greenlet_id && key < (1u << 20)) {
    if (key >= greenlet_named_.size()) greenlet_named_.resize(key + 64);
    greenlet_named_[key] = 1;
    const std::string& name = alternative.greenlet->name();
    if (!name.empty()) names_.emplace(key, name);
    return;
  }
  if (names_.find(key) == names_.end()) names_.emplace(key, alternative.describe());
}

std::string ChoiceLog::name_of(std::uint64_t key) const {
  const auto it = names_.find(key);
  if (named(key)) {
    // As Greenlet::describe() renders it.
    std::string out = "#" + std::to_string(key);
    if (it != names_.end()) out += " '" + it->second + "'";
    return out;
  }
  return it == names_.end() ? "?" : it->second;
}

namespace {
// Every program with a hub links the table libtendril_green.so looks for (green_hooks.cpp): this
// reference pulls it out of the static library.
[[gnu::used]] const void* const keep_green_hooks = &tendril_green_hooks_v2;

Alternative of_greenlet(const Greenlet* g, Action action) noexcept {
  Alternative a;
  if (g != nullptr) {
    a.greenlet_id = g->id();
    a.greenlet = g;
  }
  a.action = action;
  return a;
}

constexpr const char* action_names[] = {"?",       "start", "yield",  "wake", "timer", "kill",
                                        "timeout", "links", "notify", "call", "draw"};
}  // namespace

const char* to_string(Action action) noexcept {
  const auto i = static_cast<std::size_t>(action);
  return i < std::size(action_names) ? action_names[i] : "?";
}

bool action_from(const std::string& text, Action& action) noexcept {
  for (std::size_t i = 0; i < std::size(action_names); ++i) {
    if (text == action_names[i]) {
      action = static_cast<Action>(i);
      return true;
    }
  }
  return false;
}

Action action_of(const Callback& cb) noexcept {
  if (cb.fn == &Hub::yield_cb) return Action::yield;
  if (cb.fn == &Hub::wake_cb) return Action::wake;
  if (cb.fn == &Hub::timeout_cb) return Action::timer;
  if (cb.fn == &Greenlet::start_cb) return Action::start;
  if (cb.fn == &Greenlet::notify_cb) return Action::links;
  if (cb.fn == &Hub::throw_cb) return Action::kill;
  if (cb.fn == &TimeoutScope::fire_cb) return Action::timeout;
  if (cb.fn == &detail::linkable_notify_cb || cb.fn == &detail::queue_unlock_cb) {
    return Action::notify;
  }
  if (cb.fn == &function_cb) return Action::call;
  return Action::unknown;
}

Alternative identify(const Callback& cb) noexcept {
  // Every callback tendril queues runs one greenlet, or serves one primitive's waiters.
  if (cb.fn == &Hub::wake_cb || cb.fn == &Hub::yield_cb || cb.fn == &Hub::timeout_cb ||
      cb.fn == &Greenlet::start_cb || cb.fn == &Greenlet::notify_cb) {
    return of_greenlet(static_cast<const Greenlet*>(cb.obj), action_of(cb));
  }
  if (cb.fn == &Hub::throw_cb) {
    const auto* req = static_cast<const ThrowRequest*>(cb.obj);
    return of_greenlet(req->targets.empty() ? nullptr : req->targets.front().get(), Action::kill);
  }
  if (cb.fn == &TimeoutScope::fire_cb) {
    return of_greenlet(static_cast<const TimeoutScope*>(cb.obj)->greenlet_, Action::timeout);
  }
  if (cb.fn == &detail::linkable_notify_cb) {
    const auto* owner =
        static_cast<const Linkable*>(static_cast<const detail::Anchor*>(cb.obj)->owner);
    Alternative a;
    if (owner != nullptr) {
      a.object_id = owner->id();
      a.object = owner;
    }
    a.action = Action::notify;
    return a;
  }
  if (cb.fn == &detail::queue_unlock_cb) {
    const auto* owner =
        static_cast<const detail::QueueBase*>(static_cast<const detail::Anchor*>(cb.obj)->owner);
    Alternative a;
    if (owner != nullptr) {
      a.object_id = owner->id();
      a.object = owner;
    }
    a.action = Action::notify;
    return a;
  }
  Alternative a;
  a.action = action_of(cb);
  return a;
}

Callback Callback::from_function(std::function<void()> f) {
  return Callback{&function_cb, new std::function<void()>(std::move(f)), 0};
}

// ---- ReadyQueue ----

ReadyQueue::~ReadyQueue() { clear(); }

void ReadyQueue::clear() noexcept {
  while (size_ > 0) take(0).discard();
}

void ReadyQueue::grow() {
  std::vector<Callback> bigger(slots_.empty() ? 64 : slots_.size() * 2);
  for (std::size_t i = 0; i < size_; ++i) bigger[i] = slots_[(head_ + i) & (slots_.size() - 1)];
  slots_ = std::move(bigger);
  capacity_ = slots_.size();
  mask_ = capacity_ - 1;
  head_ = 0;
}

Callback ReadyQueue::take_middle(std::size_t i) {
  TENDRIL_ASSERT(i < size_, "ReadyQueue::take(", i, ") with ", size_, " queued");
  const std::size_t mask = slots_.size() - 1;
  Callback cb = slots_[(head_ + i) & mask];
  // Close the gap from the shorter side; the order of the rest is preserved either way.
  if (i < size_ / 2) {
    for (std::size_t j = i; j > 0; --j) slots_[(head_ + j) & mask] = slots_[(head_ + j - 1) & mask];
    head_ = (head_ + 1) & mask;
  } else {
    for (std::size_t j = i; j + 1 < size_; ++j) {
      slots_[(head_ + j) & mask] = slots_[(head_ + j + 1) & mask];
    }
  }
  --size_;
  return cb;
}

// ---- binding ----

namespace detail {

thread_local constinit Hub* t_bound_hub [[gnu::tls_model("initial-exec")]] = nullptr;

void throw_no_hub(const char* api) {
  throw UsageError(std::string(api) +
                   ": no hub is running on this thread; call it inside tendril::run(hub, ...)");
}

void throw_not_in_greenlet(const char* api) {
  throw UsageError(std::string(api) +
                   ": called on the hub's own stack (from a link or callback), which must not "
                   "block; call it from a greenlet");
}

// The serials of live hubs: consulted only when a greenlet is started or killed away from its
// own bound hub (rare), so a mutex is cheap enough. Never destroyed, so a hub with static storage
// duration can still unregister at exit.
struct HubRegistry {
  std::mutex mutex;
  std::vector<std::uint64_t> live;
  std::uint64_t next_serial = 1;
};
HubRegistry& hub_registry() {
  static HubRegistry* registry = new HubRegistry;
  return *registry;
}

std::uint64_t register_hub() {
  HubRegistry& r = hub_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.live.push_back(r.next_serial);
  return r.next_serial++;
}

void unregister_hub(std::uint64_t serial) noexcept {
  HubRegistry& r = hub_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::erase(r.live, serial);
}

bool hub_alive(std::uint64_t serial) noexcept {
  HubRegistry& r = hub_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return std::find(r.live.begin(), r.live.end(), serial) != r.live.end();
}

}  // namespace detail

HubBinding::HubBinding(Hub& hub) {
  if (detail::t_bound_hub != nullptr) {
    throw UsageError(
        "tendril::run: a hub is already running on this thread; run() does not nest (spawn a "
        "greenlet instead)");
  }
  detail::t_bound_hub = &hub;
  // A stack overflow is reported from a signal handler, which needs a stack of its own; a
  // std::terminate in a greenlet names it.
  detail::ensure_alt_stack();
  detail::install_terminate_handler();
}

HubBinding::~HubBinding() { detail::t_bound_hub = nullptr; }

// ---- Hub ----

Hub::Hub(HubOptions options)
    : stacks_(options.stack), eh_globals_(detail::eh_globals()), serial_(detail::register_hub()) {}

Hub::~Hub() {
  ready_.clear();
  detail::unregister_hub(serial_);
}

void Hub::post_threadsafe(std::function<void()>) {
  throw UsageError(
      "tendril::Hub::post_threadsafe: this hub takes no cross-thread posts (a "
      "simulated run is single-threaded and deterministic; use LibevHub)");
}

void Hub::compute_for(Duration d) { std::this_thread::sleep_for(d); }

void Hub::run_blocking(const std::function<void()>& work) {
  if (current_ == nullptr) detail::throw_not_in_greenlet("tendril::blocking_call");
  work();
}

net::Backend& Hub::net() {
  throw UsageError("tendril::net: this hub has no network backend (SimHub and LibevHub have one)");
}

void Hub::reset_core() {
  if (running_ || live_count_ != 0) {
    throw UsageError("tendril::Hub: cannot reset a hub that is running or has live greenlets");
  }
  ready_.clear();
  next_id_ = 1;
  next_object_id_ = 1;
  steps_ = 0;
  loop_steps_ = 0;
  stale_marks_ = 0;
  pending_wakes_ = 0;
  pending_throws_ = 0;
  entropy_draws_ = 0;
}

Greenlet* Hub::take_direct_other() noexcept {
  // take_direct() found the front of the ready queue is not a plain resume.
  static_assert(detail::QueueBase::pass_fresh == 0 && Linkable::notify_fresh == 0);
  Callback* cb = &ready_.front();
  for (;;) {
    const bool queue_pass = cb->fn == &detail::queue_unlock_cb;
    if (!queue_pass && cb->fn != &detail::linkable_notify_cb) return nullptr;
    auto* const anchor = static_cast<detail::Anchor*>(cb->obj);
    if (anchor->owner != nullptr) [[likely]] {
      if (cb->arg == 0) {
        // A queued pass starts: a step, and progress, as the loop would count it.
        if (steps_ >= step_limit_) return nullptr;
        progress_step_ = ++steps_;
        set_yield_bound();
      }
      if (queue_pass) {
        auto* const queue = static_cast<detail::QueueBase*>(anchor->owner);
        if (cb->arg == detail::QueueBase::pass_fresh) cb->arg = detail::QueueBase::pass_round;
        for (;;) {
          const WaitToken token = queue->unlock_step(cb->arg, false);
          Greenlet* const g = token.greenlet;
          if (g == nullptr) break;
          // A wait that ended meanwhile is skipped, as wake_now() skips it.
          if (g->state_ == Greenlet::State::running && g->wait_seq_ == token.seq) [[likely]] {
            ++g->wait_seq_;  // woken as wake() wakes it (timed_out_: see take_direct)
            return g;
          }
        }
        // An item to move runs T's code: the hub's stack does that (finish_pass).
        if (cb->arg != detail::QueueBase::pass_over) return nullptr;
        queue->unlock_pending_ = false;  // the pass is over (see queue_unlock_cb)
      } else {
        auto* const linkable = static_cast<Linkable*>(anchor->owner);
        for (;;) {
          const WaitToken token = linkable->notify_step(cb->arg, false);
          Greenlet* const g = token.greenlet;
          if (g == nullptr) break;
          if (g->state_ == Greenlet::State::running && g->wait_seq_ == token.seq) [[likely]] {
            ++g->wait_seq_;
            return g;
          }
        }
        // A rawlink to run, or a notification to queue: the hub's stack does those.
        if (cb->arg != Linkable::notify_over) return nullptr;
      }
    } else if (cb->arg == 0) {
      return nullptr;  // an object gone before its pass started: the loop's to drop
    }
    // The pass is over, or its object is gone (a greenlet it woke destroyed it): the next step is
    // the next front's.
    ready_.take(0);
    anchor->release();
    if (ready_.empty()) return nullptr;
    cb = &ready_.front();
    if (is_plain_resume(*cb)) return take_direct();
  }
}

void Hub::run_direct_other(Callback& cb) {
  if (is_pass(cb) && cb.arg == 0 && static_cast<detail::Anchor*>(cb.obj)->owner != nullptr) {
    ready_.untake(cb);  // with its reference to the anchor
    finish_pass(true);
    return;
  }
  cb.invoke();
}

void Hub::finish_pass(bool start) {
  struct Disarm {
    Hub* hub;
    ~Disarm() { hub->direct_armed_ = direct_off; }
  } disarm{this};
  while (!ready_.empty()) {
    Callback& cb = ready_.front();
    // A pass queued and not started is the loop's next step, unless the loop just took it.
    if (!is_pass(cb) || (cb.arg == 0 && !start)) return;
    start = false;
    auto* const anchor = static_cast<detail::Anchor*>(cb.obj);
    bool over = anchor->owner == nullptr;
    WaitToken token;
    if (!over) {
      // A step may run user code (an item's move, a rawlink), which may queue callbacks: the ring
      // may move, but the pass stays at its front.
      std::uint64_t phase = cb.arg;
      if (cb.fn == &detail::queue_unlock_cb) {
        auto* const queue = static_cast<detail::QueueBase*>(anchor->owner);
        if (phase == detail::QueueBase::pass_fresh) phase = detail::QueueBase::pass_round;
        token = queue->unlock_step(phase, true);
        over = token.greenlet == nullptr;
        if (over) queue->unlock_pending_ = false;  // see queue_unlock_cb
      } else {
        token = static_cast<Linkable*>(anchor->owner)->notify_step(phase, true);
        // (After a rawlink the object may be gone.)
        over = phase == Linkable::notify_over || anchor->owner == nullptr;
      }
      ready_.front().arg = phase;
    }
    if (over) {
      ready_.take(0);
      anchor->release();
      return;
    }
    if (token.greenlet == nullptr) continue;  // a rawlink ran
    if (stop_ || TENDRIL_OBSERVER(this) != nullptr) {
      direct_armed_ = direct_off;
    } else {
      arm_direct();
    }
    wake(token.greenlet, token.seq, false);  // a wait that ended meanwhile is skipped
  }
}

bool Hub::stale_other(const Callback& cb) noexcept {
  if (cb.fn == &Greenlet::start_cb) {
    return static_cast<const Greenlet*>(cb.obj)->state_ != Greenlet::State::scheduled;
  }
  if (cb.fn == &Hub::throw_cb) {
    const auto* req = static_cast<const ThrowRequest*>(cb.obj);
    if (req->waker.greenlet != nullptr) return false;
    for (const auto& g : req->targets) {
      if (g->state_ != Greenlet::State::dead) return false;
    }
    return true;
  }
  if (cb.fn == &Greenlet::notify_cb) {
    // Joiners that gave up and links unlinked leave nothing to notify (gevent runs it anyway).
    return static_cast<const Greenlet*>(cb.obj)->links_.empty();
  }
  if (cb.fn == &detail::linkable_notify_cb) {
    const auto* anchor = static_cast<const detail::Anchor*>(cb.obj);
    return anchor->owner == nullptr || static_cast<const Linkable*>(anchor->owner)->notify_idle();
  }
  if (cb.fn == &detail::queue_unlock_cb) {
    const auto* anchor = static_cast<const detail::Anchor*>(cb.obj);
    return anchor->owner == nullptr ||
           !static_cast<const detail::QueueBase*>(anchor->owner)->unlock_would_act();
  }
  return false;
}

void Hub::set_observer(Observer* observer) {
#ifdef TENDRIL_NO_OBSERVER_HOOK
  if (observer != nullptr) {
    throw UsageError(
        "tendril::Hub::set_observer: this tendril was built with -DTENDRIL_TRACE_HOOK=OFF, which "
        "compiles the observer hook away; rebuild with the default to trace");
  }
#endif
  observer_ = observer;
  direct_armed_ = direct_off;  // a direct switch would pass it by: the hub takes the next step
}

void Hub::set_error_handler(ErrorHandler handler) {
  on_error_ = nullptr;
  if (handler) {
    on_error_ = [handler = std::move(handler)](Greenlet& g, std::exception_ptr e, ErrorOrigin) {
      handler(g, std::move(e));
    };
  }
}

void Hub::set_error_handler(OriginErrorHandler handler) { on_error_ = std::move(handler); }

void Hub::report_error(Greenlet& greenlet, std::exception_ptr error, ErrorOrigin origin) noexcept {
  try {
    if (origin == ErrorOrigin::greenlet && greenlet.link_of() != nullptr)
      origin = ErrorOrigin::link;
    if (on_error_) {
      const OriginErrorHandler handler = on_error_;  // the handler may replace itself
      handler(greenlet, error, origin);
      return;
    }
    const std::string what = describe_exception(error);
    // The same kind of error (its text up to numbers) past the first few in this run is counted,
    // and summed up when the run ends.
    std::string signature = std::to_string(static_cast<int>(origin));
    for (std::size_t i = 0; i < what.size(); ++i) {
      const bool digit = std::isdigit(static_cast<unsigned char>(what[i])) != 0;
      if (!digit) {
        signature += what[i];
      } else if (i == 0 || std::isdigit(static_cast<unsigned char>(what[i - 1])) == 0) {
        signature += '#';  // a number, whatever its digits
      }
    }
    auto kind = std::find_if(error_kinds_.begin(), error_kinds_.end(),
                             [&](const ErrorKind& k) { return k.signature == signature; });
    if (kind == error_kinds_.end()) {
      // Running out of stacks is one condition, however many spawns meet it: said once.
      bool stack_limit = false;
      try {
        std::rethrow_exception(error);
      } catch (const StackLimitError&) {
        stack_limit = true;
      } catch (...) {
      }
      error_kinds_.push_back(ErrorKind{std::move(signature), "greenlet " + greenlet.describe(), 0,
                                       stack_limit ? std::size_t{1} : errors_in_full});
      kind = error_kinds_.end() - 1;
    }
    if (++kind->seen > kind->in_full) return;
    switch (origin) {
      case ErrorOrigin::greenlet:
        std::fprintf(stderr, "tendril: greenlet %s failed with %s\n", greenlet.describe().c_str(),
                     what.c_str());
        break;
      case ErrorOrigin::link:
        std::fprintf(stderr, "tendril: a link of %s (greenlet %s) failed with %s\n",
                     greenlet.link_of()->describe().c_str(), greenlet.describe().c_str(),
                     what.c_str());
        break;
      case ErrorOrigin::rawlink:
        std::fprintf(stderr, "tendril: a rawlink of %s failed with %s\n",
                     greenlet.describe().c_str(), what.c_str());
        break;
    }
  } catch (...) {
    std::fprintf(stderr, "tendril: the error handler threw while reporting a greenlet failure\n");
  }
}

void Hub::flush_error_summary() noexcept {
  for (const ErrorKind& k : error_kinds_) {
    if (k.seen <= k.in_full) continue;
    if (k.in_full == 1) {
      std::fprintf(stderr,
                   "tendril: and %llu more greenlets could not get a stack either (the limit "
                   "%s met, above, is reported once)\n",
                   static_cast<unsigned long long>(k.seen - 1), k.first.c_str());
      continue;
    }
    std::fprintf(stderr,
                 "tendril: and %llu more greenlets failed with the same error as %s (up to its "
                 "numbers; the first %zu of each kind are printed in full)\n",
                 static_cast<unsigned long long>(k.seen - errors_in_full), k.first.c_str(),
                 errors_in_full);
  }
  error_kinds_.clear();
}

void Hub::fail_run(std::exception_ptr error) noexcept {
  if (!running_ || run_failure_ || !error) return;
  run_failure_ = std::move(error);
  stop_ = true;
  direct_armed_ = direct_off;  // every stop_ ends run_direct(): the next park goes to the hub
}

void Hub::resume_while_running(Greenlet* g) const {
  detail::assert_fail(
      __FILE__, __LINE__, "current_ == nullptr",
      detail::concat("resume(", g->describe(), ") while ", current_->describe(), " is running"));
}

namespace {

bool is_system_exit(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const SystemExit&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

void Hub::finish_dead(Greenlet* g) {
  // The fiber has returned and its stack is back in the pool. Report an uncaught exception once,
  // here on the hub's stack, before any joiner or link runs (gevent); main's goes to run()'s
  // caller instead. Then drop the hub's reference; nothing may touch g after this.
  detail::tsan_destroy(g->tsan_fiber_);
  if (g->error_ && g != main_) [[unlikely]] {
    if (is_system_exit(g->error_)) {
      // Not a failure: the program is to end. gevent throws it into main at once, wherever main
      // is blocked; so do we, before any other callback runs (main handles it or run() ends).
      if (main_ != nullptr && main_->state_ == Greenlet::State::running) deliver(main_, g->error_);
    } else {
      report_error(*g, g->error_);
    }
  }
  g->release();
}

void Hub::rethrow_pending(Greenlet* g) {
  std::rethrow_exception(std::exchange(g->pending_throw_, nullptr));
}

void Observer::on_resume(const Greenlet& g, Resume why, const char* reason,
                         const Waitable* object) {
  static constexpr const char* names[] = {"start", "resume", "timeout", "kill"};
  if (why == Resume::wake || why == Resume::timeout) {
    on_wake(g, reason, object, why == Resume::timeout);
  }
  on_switch(nullptr, &g, names[static_cast<int>(why)]);
}

void Observer::on_return(const Greenlet& g, const char* reason, const Waitable* object, bool dead) {
  if (!dead) on_block(g, reason, object);
  on_switch(&g, nullptr, reason);
}

void Hub::observe_resume(Observer* observer, Greenlet* g, Resume why) {
  const char* reason = g->wait_reason_ != nullptr ? g->wait_reason_ : "switch";
  // A sleep ends by its timer: for the observer that is the sleep's normal end, not a timeout.
  if (why == Resume::wake && g->timed_out_ && std::string_view(reason) != "sleep") {
    why = Resume::timeout;
  }
  observer->on_resume(*g, why, reason, g->wait_object_);
}

void Hub::observe_return(Observer* observer, Greenlet* g) {
  if (g->state_ == Greenlet::State::dead) {
    observer->on_exit(*g, g->error_, g->killed_);
    observer->on_return(*g, "exit", nullptr, true);
    return;
  }
  observer->on_return(*g, g->wait_reason_ != nullptr ? g->wait_reason_ : "switch", g->wait_object_,
                      false);
}

void Hub::check_dense_stack(const Greenlet* g) const {
  char probe;
  const char* bottom = static_cast<const char*>(g->stack_.sp) - g->stack_.size;
  TENDRIL_ASSERT(!stacks_.overflowed(g->stack_) && &probe > bottom, "stack overflow in greenlet ",
                 g->describe(), " (dense stacks of ", g->stack_.size,
                 " bytes have no guard page; raise StackOptions::size_bytes)");
}

void Hub::add_live(Greenlet* g) noexcept {
  g->add_ref();
  g->live_prev_ = live_tail_;
  g->live_next_ = nullptr;
  (live_tail_ ? live_tail_->live_next_ : live_head_) = g;
  live_tail_ = g;
  ++live_count_;
}

void Hub::remove_live(Greenlet* g) noexcept {
  (g->live_prev_ ? g->live_prev_->live_next_ : live_head_) = g->live_next_;
  (g->live_next_ ? g->live_next_->live_prev_ : live_tail_) = g->live_prev_;
  g->live_prev_ = g->live_next_ = nullptr;
  --live_count_;
  if (g == main_ || (main_ == nullptr && live_count_ == 0)) {
    stop_ = true;
    direct_armed_ = direct_off;
  }
}

void Hub::deliver(Greenlet* g, const std::exception_ptr& error) {
  if (g->state_ == Greenlet::State::dead) return;
  // Main, parked while its own exception leaves it, dies of that exception; a kill meanwhile
  // (from a greenlet being killed) finds it already leaving.
  if (g == g->hub_->leaving_) [[unlikely]]
    return;
  g->hub_->note_stale_possible();  // the wakeup g waits for, or its start, does nothing now
  if (g->state_ != Greenlet::State::running) {
    g->die_before_start(error);
    return;
  }
  ++g->wait_seq_;  // whatever g was waiting for no longer wakes it
  g->pending_throw_ = error;
  g->hub_->resume(g, Resume::kill);
}

void Hub::wake_cb(Callback& cb, bool run) {
  auto* g = static_cast<Greenlet*>(cb.obj);
  Hub* hub = g->hub_;
  --hub->pending_wakes_;
  // A wait woken here while other wake_callback()s are queued (a select over two ready objects)
  // may leave one of them stale: tell SimHub to look (is_stale).
  if (run && g->wait_seq_ == cb.arg && hub->pending_wakes_ != 0) hub->note_stale_possible();
  if (run) wake(g, cb.arg, false);
  g->release();
}

void Hub::yield_cb(Callback& cb, bool run) {
  auto* g = static_cast<Greenlet*>(cb.obj);
  if (run) wake(g, cb.arg, false);
  g->release();
}

void Hub::timeout_cb(Callback& cb, bool run) {
  auto* g = static_cast<Greenlet*>(cb.obj);
  if (run) {
    Observer* observer = TENDRIL_OBSERVER(g->hub_);
    if (observer != nullptr && g->wait_seq_ == cb.arg) [[unlikely]] {
      const char* reason = g->wait_reason_;
      observer->on_timer(
          g, reason != nullptr && std::string_view(reason) == "sleep" ? "sleep" : "timeout");
    }
    // A wait that times out while a wake_callback() for it is queued leaves that one stale.
    if (g->wait_seq_ == cb.arg && g->hub_->pending_wakes_ != 0) g->hub_->note_stale_possible();
    wake(g, cb.arg, true);
  }
  g->release();
}

void Hub::throw_cb(Callback& cb, bool run) {
  std::unique_ptr<ThrowRequest> req(static_cast<ThrowRequest*>(cb.obj));
  if (!req->targets.empty()) --req->targets.front()->hub_->pending_throws_;
  if (!run) return;
  for (auto& g : req->targets) deliver(g.get(), req->error);
  if (req->waker.greenlet) wake(req->waker.greenlet, req->waker.seq, false);
}

bool Hub::park_until(const WaitToken& token, const char* reason, const Waitable* object,
                     std::int64_t deadline_ns, TimerPriority deadline_priority) {
  Greenlet* g = current_;
  TENDRIL_ASSERT(g == token.greenlet && g->wait_seq_ == token.seq, "park() with a stale token");
  // The guard disarms the deadline on every way out, including a forced unwind of the stack.
  struct Deadline {
    Hub* hub;
    TimerId timer = 0;
    ~Deadline() {
      if (timer != 0) hub->cancel_timer(timer);
    }
  } deadline{this};
  g->add_ref();
  deadline.timer = start_timer(deadline_ns, Callback{&timeout_cb, g, token.seq}, deadline_priority);
  g->wait_reason_ = reason;
  g->wait_object_ = object;
  g->timed_out_ = false;
  switch_to_hub();
  g->wait_reason_ = nullptr;
  g->wait_object_ = nullptr;
  const bool timed_out = g->timed_out_;
  if (timed_out) deadline.timer = 0;  // it fired
  if (g->pending_throw_) rethrow_pending(g);
  return !timed_out;
}

void Hub::throw_into(Greenlet& g, std::exception_ptr error, const WaitToken& waker) {
  if (TENDRIL_OBSERVER(this) != nullptr) [[unlikely]] {
    observer_->on_kill(g, current_);
  }
  auto* req =
      new ThrowRequest{{Ref<Greenlet>(&g)}, std::move(error), waker, Ref<Greenlet>(waker.greenlet)};
  ++pending_throws_;  // a target dying meanwhile makes it stale (Greenlet::on_death)
  schedule(Callback{&throw_cb, req, 0});
}

void Hub::throw_into_all(std::vector<Ref<Greenlet>> targets, std::exception_ptr error,
                         const WaitToken& waker) {
  if (TENDRIL_OBSERVER(this) != nullptr) [[unlikely]] {
    for (const auto& g : targets) observer_->on_kill(*g, current_);
  }
  auto* req =
      new ThrowRequest{std::move(targets), std::move(error), waker, Ref<Greenlet>(waker.greenlet)};
  if (!req->targets.empty()) ++pending_throws_;
  schedule(Callback{&throw_cb, req, 0});
}

void Hub::verify() const {
  TENDRIL_ASSERT(current_ == nullptr, "verify() while ", current_->describe(), " runs");
  std::size_t count = 0;
  const Greenlet* prev = nullptr;
  for (const Greenlet* g = live_head_; g != nullptr; g = g->live_next_) {
    TENDRIL_ASSERT(g->live_prev_ == prev, "live list broken at ", g->describe());
    TENDRIL_ASSERT(g->hub_ == this, g->describe(), " is on another hub's live list");
    TENDRIL_ASSERT(g->state_ == Greenlet::State::scheduled || g->state_ == Greenlet::State::running,
                   g->describe(), " is on the live list in state ", static_cast<int>(g->state_));
    TENDRIL_ASSERT(g->ref_count() >= 1, g->describe(), " is live without the hub's reference");
    prev = g;
    ++count;
  }
  TENDRIL_ASSERT(prev == live_tail_, "live list tail is not its last element");
  TENDRIL_ASSERT(count == live_count_, "live list holds ", count, " greenlets, count says ",
                 live_count_);
}

void Hub::wait_until_idle() {
  const WaitToken token = begin_wait("tendril::wait");
  idle_waiters_.emplace_back(Ref<Greenlet>(token.greenlet), token);
  park(token, "wait()", nullptr);
}

namespace {

// waits_for() is the greenlet g waits for: the holder of what it waits on, or the greenlet it
// joins; null when that is nobody in particular (an Event, a Queue).
const Greenlet* waits_for(const Waitable* object) {
  if (object == nullptr) return nullptr;
  if (const Greenlet* h = object->holder()) return h;
  return object->as_greenlet();
}

std::string describe_holder(const Greenlet* h) {
  return h->describe() + (h->dead() ? " (dead)" : "");
}

}  // namespace

std::string Hub::deadlock_report() const {
  std::string out = "tendril: deadlock at " + position() + ": nothing is ready, no timer is " +
                    "pending, and " + std::to_string(live_count_) + " greenlet" +
                    (live_count_ == 1 ? " is" : "s are") + " blocked:";
  // The first greenlets one by one; past a screenful, the rest grouped by what they wait on
  // (a million blocked greenlets make a few lines, not a million), groups in order of first
  // appearance, at most a screenful of those too.
  constexpr std::size_t listed = 20;
  constexpr std::size_t max_groups = 10;
  std::vector<std::pair<std::string, std::size_t>> groups;
  std::map<std::string, std::size_t> group_of;
  std::size_t n = 0;
  for (const Greenlet* g = live_head_; g != nullptr; g = g->live_next_, ++n) {
    if (n < listed) {
      out += "\n  " + g->describe();
      if (g->wait_reason_ != nullptr) {
        out += std::string(" blocked in ") + g->wait_reason_;
        if (g->wait_object_ != nullptr) {
          out += " on " + g->wait_object_->describe();
          if (const Greenlet* h = g->wait_object_->holder()) {
            out += ", held by " + describe_holder(h);
          }
        }
      } else {
        out += " (not blocked: scheduled to run)";
      }
      continue;
    }
    std::string what = "(not blocked: scheduled to run)";
    if (g->wait_reason_ != nullptr) {
      what = std::string("blocked in ") + g->wait_reason_;
      if (g->wait_object_ != nullptr) {
        what += g->wait_object_->as_greenlet() != nullptr ? " on other greenlets"
                                                          : " on " + g->wait_object_->describe();
      }
    }
    auto [it, fresh] = group_of.try_emplace(std::move(what), groups.size());
    if (fresh) groups.emplace_back(it->first, 0);
    ++groups[it->second].second;
  }
  std::size_t rest = 0;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if (i < max_groups) {
      out += "\n  and " + std::to_string(groups[i].second) + " more " + groups[i].first;
    } else {
      rest += groups[i].second;
    }
  }
  if (rest > 0) {
    out += "\n  and " + std::to_string(rest) + " more in " +
           std::to_string(groups.size() - max_groups) + " other kinds of wait";
  }
  // The first wait-for cycle, following each blocked greenlet's edge in spawn order: a greenlet
  // waits for the holder of its lock, or for the greenlet it joins. Each greenlet is walked
  // through once (a million blocked greenlets cost n log n, not n squared).
  std::set<const Greenlet*> explored;
  for (const Greenlet* start = live_head_; start != nullptr; start = start->live_next_) {
    std::vector<const Greenlet*> path;
    std::set<const Greenlet*> on_path;
    const Greenlet* g = start;
    while (g != nullptr && explored.count(g) == 0) {
      explored.insert(g);
      on_path.insert(g);
      path.push_back(g);
      g = g->dead() ? nullptr : waits_for(g->wait_object_);
    }
    // Reaching a greenlet explored from an earlier start is no cycle of this walk (that walk
    // would have reported it).
    if (g == nullptr || on_path.count(g) == 0) continue;
    out += "\n  wait-for cycle:";
    const auto from = std::find(path.begin(), path.end(), g);
    for (auto it = from; it != path.end(); ++it) {
      const Waitable* object = (*it)->wait_object_;
      out += std::string(it == from ? " " : "; ") + (*it)->describe();
      if (const Greenlet* joined = object->as_greenlet()) {
        out += " joins " + joined->describe();
      } else {
        out += " waits for " + object->describe() + ", held by " + object->holder()->describe();
      }
    }
    break;
  }
  return out;
}

void Hub::run_main(Greenlet& main) {
  if (running_) throw UsageError("tendril::run: this hub is already running");
  running_ = true;
  stop_ = false;
  main_ = &main;
  eh_globals_ = detail::eh_globals();
  error_kinds_.clear();
  struct Reset {
    Hub* hub;
    ~Reset() {
      hub->flush_error_summary();
      hub->deadlock_report_.clear();
      hub->run_failure_ = nullptr;
      hub->running_ = false;
      hub->main_ = nullptr;
      hub->stop_ = false;
    }
  } reset{this};
  begin_run();
  main.start();
  try {
    for (;;) {
      run_loop();
      if (run_failure_) std::rethrow_exception(run_failure_);
      if (main.dead()) break;
      if (leaving_ != nullptr) {
        // An exception is leaving main (main_exception_leaving()): the others die while main's
        // frame is intact, then main resumes, its locals are destroyed and it dies of it.
        teardown(&main);
        main_ = &main;
        leaving_ = nullptr;
        wake(&main, main.wait_seq_, false);
        continue;
      }
      if (!idle_waiters_.empty()) {
        // Idle, and someone asked to be woken then (tendril::wait()): that is not a deadlock.
        auto waiters = std::move(idle_waiters_);
        idle_waiters_.clear();
        for (auto& [g, token] : waiters) schedule(wake_callback(token));
        continue;
      }
      // Nothing can ever wake main: raise the report in main at its blocking point (gevent's
      // LoopExit), so that its destructors run and it may catch it. Main's locals are often
      // shared with the other blocked greenlets (a lock they hold, a queue they wait on), so
      // those are killed first, while main's frame is intact; main's own wait is cancelled so
      // their deaths cannot wake it in the meantime.
      if (deadlock_report_.empty()) {
        deadlock_report_ = deadlock_report();
        std::vector<Ref<Greenlet>> others;
        for (Greenlet* g = live_head_; g != nullptr; g = g->live_next_) {
          if (g != &main) others.emplace_back(g);
        }
        if (!others.empty()) {
          ++main.wait_seq_;
          throw_into_all(std::move(others), std::make_exception_ptr(GreenletExit()));
          continue;
        }
      }
      throw_into(main, std::make_exception_ptr(Deadlock(std::exchange(deadlock_report_, {}))));
    }
  } catch (...) {
    teardown();
    throw;
  }
  teardown();
}

void Hub::drain_ready() {
  // Runs what is already queued (link notifications of greenlets that just died, mostly), in
  // FIFO order, without touching timers; bounded, since a callback may queue another.
  for (int n = 0; n < 1000000 && !ready_.empty(); ++n) {
    Callback cb = ready_.take(0);
    count_step();
    cb.invoke();
  }
}

void Hub::main_exception_leaving() noexcept {
  // On main's stack, inside the unwinder's search phase: nothing here may throw.
  Greenlet* const g = current_;
  if (!running_ || g == nullptr || g != main_ || leaving_ != nullptr || live_count_ <= 1) return;
  if (run_failure_) return;  // the run is ending already; teardown will order the deaths
  leaving_ = g;
  ++g->wait_seq_;  // no wakeup of an earlier wait resumes main meanwhile
  g->wait_reason_ = "exception";
  g->wait_object_ = nullptr;
  stop_ = true;  // run_loop() returns to run_main() once the current callback is done
  direct_armed_ = direct_off;
  switch_to_hub();
  g->wait_reason_ = nullptr;
}

void Hub::teardown(Greenlet* spared) {
  begin_teardown();
  struct End {
    Hub* hub;
    ~End() { hub->end_teardown(); }
  } end{this};
  // Greenlets still alive when main is done are killed, as gevent kills them at interpreter exit,
  // so that their destructors run, their links fire and no stack leaks. Each dies at the wait it
  // is in: a wakeup queued for it before the end is stale, so no leftover goes on running its
  // code after the run ended. A greenlet may catch GreenletExit and block again; it gets a few
  // more kills, then its stack is unwound by force.
  //
  // When the hub stopped the run itself (fail_run(), the step limit, a replay's Divergence), main
  // is still alive and blocked, and the others often hold references into its frame (a lock, a
  // queue, a counter): they die first, while that frame is intact, and main's wait is cancelled
  // so that their deaths cannot resume it; main dies last (as at a deadlock).
  //
  // `spared` (main, parked while its exception leaves it) is neither killed nor unwound here.
  Ref<Greenlet> main;
  if (spared == nullptr && main_ != nullptr && !main_->dead()) {
    main = Ref<Greenlet>(main_);
    if (main->state() == Greenlet::State::running) ++main->wait_seq_;
  }
  main_ = nullptr;
  const std::size_t kept = spared != nullptr ? 1 : 0;
  for (int round = 0; round < 8 && (live_count_ > kept || !ready_.empty()); ++round) {
    const bool spare_main = main && !main->dead() && live_count_ > 1;
    std::vector<Ref<Greenlet>> alive;
    for (Greenlet* g = live_head_; g != nullptr; g = g->live_next_) {
      if (!(spare_main && g == main.get()) && g != spared) alive.emplace_back(g);
    }
    std::vector<Ref<Greenlet>> running;
    for (auto& g : alive) {
      if (g->started() && g->state() != Greenlet::State::running) {
        g->kill(nullptr, false);  // never started: dies at once
      } else if (!g->dead()) {
        // The wait it is in ends here: a wakeup already queued for it (a sleep(0), an Event set
        // before the end) is stale, so GreenletExit is the first thing it sees, and no user code
        // goes on as if the run had not ended.
        ++g->wait_seq_;
        running.push_back(g);
      }
    }
    if (!running.empty())
      throw_into_all(std::move(running), std::make_exception_ptr(GreenletExit()));
    try {
      stop_ = live_count_ == kept;
      if (!stop_) run_loop();
      drain_ready();
    } catch (...) {
      // The run is over either way; say what went wrong instead of masking the run's own result.
      std::fprintf(stderr, "tendril: while killing leftover greenlets: %s\n",
                   describe_exception(std::current_exception()).c_str());
      break;
    }
  }
  if (live_count_ > kept) {
    std::fprintf(stderr,
                 "tendril: %zu greenlet(s) survived GreenletExit after main %s; unwinding "
                 "their stacks by force\n",
                 live_count_ - kept, spared != nullptr ? "raised" : "returned");
    for (;;) {
      // From the head each time: a destructor run below may end other greenlets too.
      Greenlet* first = live_head_;
      if (first != nullptr && first == spared) first = first->live_next_;
      if (first == nullptr) break;
      Ref<Greenlet> g(first);
      remove_live(g.get());
      g->state_ = Greenlet::State::dead;
      detail::tsan_enter(g->tsan_fiber_, tsan_native_);
      detail::eh_swap(eh_globals_, g->eh_);
      // Tell ASan about the switch before the unwinding runs on g's stack: while a switch is
      // under way ASan takes the stack it is on for the target's, so the throw of forced_unwind
      // clears stale poison there. The fiber exits by that exception, past the code that would
      // announce the switch back, so the hub finishes it and then moves ASan back to its own.
      void* fake_stack = nullptr;
      detail::asan_start_switch(&fake_stack, static_cast<char*>(g->stack_.sp) - g->stack_.size,
                                g->stack_.size);
      g->ctx_ = boost::context::fiber();  // forced_unwind runs the greenlet's destructors
      detail::asan_finish_switch(fake_stack, nullptr, nullptr);
      detail::asan_start_switch(&fake_stack, native_stack_bottom_, native_stack_size_);
      detail::asan_finish_switch(fake_stack, nullptr, nullptr);
      detail::eh_swap(eh_globals_, g->eh_);
      detail::tsan_leave(tsan_native_);
      detail::tsan_destroy(g->tsan_fiber_);
      g->release();  // the hub's reference for the running greenlet
    }
  }
  ready_.clear();
  stop_ = false;
}

}  // namespace tendril
