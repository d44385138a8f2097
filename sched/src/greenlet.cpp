// SPDX-License-Identifier: Apache-2.0
// greenlet.cpp: the Greenlet lifecycle (start, death, links, join, kill) and the free functions.
#include "tendril/sched/greenlet.hpp"

#include <algorithm>
#include <boost/context/fiber.hpp>
#include <cstdio>
#include <limits>
#include <utility>

#include "tendril/sched/assert.hpp"
#include "tendril/sched/detail/observe.hpp"
#include "tendril/sched/detail/switch.hpp"
#include "tendril/sched/wait.hpp"

namespace tendril {
namespace {

// PooledStack is the Boost.Context stack allocator that takes stacks from the hub's pool and
// records the one it hands out in the greenlet (for ASan and overflow checks).
struct PooledStack {
  StackPool* pool;
  boost::context::stack_context* out;
  boost::context::stack_context allocate() { return *out = pool->allocate(); }
  void deallocate(boost::context::stack_context& sctx) noexcept { pool->deallocate(sctx); }
};

bool is_greenlet_exit(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const GreenletExit&) {
    return true;
  } catch (...) {
    return false;
  }
}

std::int64_t deadline_after(Hub& hub, Duration d, const char* api) {
  if (d < Duration::zero()) {
    throw UsageError(std::string(api) + ": negative duration (" + std::to_string(d.count()) +
                     " ns)");
  }
  const std::int64_t now = hub.now_ns();
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  return d.count() > max - now ? max : now + d.count();
}

std::optional<std::int64_t> optional_deadline(Hub& hub, std::optional<Duration> timeout,
                                              const char* api) {
  if (!timeout) return std::nullopt;
  return deadline_after(hub, *timeout, api);
}

}  // namespace

Greenlet::Greenlet(std::string name)
    : hub_(&current_hub("tendril::Greenlet")),
      hub_serial_(hub_->serial_),
      id_(hub_->next_id_++),
      name_(std::move(name)) {}

void Greenlet::check_hub(const char* api) const {
  // Fast path: the hub bound to this thread is this greenlet's (a hub built later at the same
  // address has another serial).
  if (const Hub* bound = current_hub_or_null(); bound == hub_ && bound->serial_ == hub_serial_) {
    return;
  }
  if (!detail::hub_alive(hub_serial_)) {
    throw UsageError(std::string(api) + ": " + describe() +
                     " belongs to a hub that was destroyed; a greenlet runs only on the hub it "
                     "was created on");
  }
}

Greenlet::~Greenlet() {
  detail::tsan_destroy(tsan_fiber_);
  // A greenlet is destroyed only when nothing holds it: dead, or never started.
  TENDRIL_ASSERT(state_ == State::dead || state_ == State::created, "destroying live greenlet ",
                 describe());
}

void Greenlet::run() {
  throw UsageError("tendril::Greenlet::run: " + describe() +
                   " has no body; override run() in a subclass or use tendril::spawn(f)");
}

std::string Greenlet::describe() const {
  std::string out = "#" + std::to_string(id_);
  if (!name_.empty()) out += " '" + name_ + "'";
  return out;
}

void Greenlet::start() {
  if (state_ != State::created) return;
  check_hub("tendril::Greenlet::start");
  if (!heap_allocated_) {
    throw UsageError("tendril::Greenlet::start: " + describe() +
                     " was not created by make_greenlet<G>() or spawn(); greenlets must live on "
                     "the heap, owned through Ref<>");
  }
  state_ = State::scheduled;
  hub_->add_live(this);
  if (TENDRIL_OBSERVER(hub_) != nullptr) [[unlikely]] {
    hub_->observer_->on_spawn(*this, hub_->current_);
  }
  add_ref();  // held by the queued start callback
  hub_->schedule(Callback{&Greenlet::start_cb, this, 0});
}

void Greenlet::start_later(Duration delay) {
  if (state_ != State::created) return;
  check_hub("tendril::Greenlet::start_later");
  const std::int64_t deadline = deadline_after(*hub_, delay, "tendril::Greenlet::start_later");
  if (!heap_allocated_) {
    throw UsageError("tendril::Greenlet::start_later: " + describe() +
                     " was not created by make_greenlet<G>() or spawn_later()");
  }
  state_ = State::scheduled;
  hub_->add_live(this);
  if (TENDRIL_OBSERVER(hub_) != nullptr) [[unlikely]] {
    hub_->observer_->on_spawn(*this, hub_->current_);
  }
  add_ref();  // held by the timer
  start_timer_ = hub_->start_timer(deadline, Callback{&Greenlet::start_cb, this, 0});
}

void Greenlet::start_cb(Callback& cb, bool run) {
  auto* g = static_cast<Greenlet*>(cb.obj);
  if (run && g->state_ == State::scheduled) g->begin_start();
  g->release();
}

void Greenlet::begin_start() {
  start_timer_ = 0;
  try {
    ctx_ = boost::context::fiber(
        std::allocator_arg, PooledStack{&hub_->stacks_, &stack_},
        [this](boost::context::fiber&& from) -> boost::context::fiber {
          Hub* hub = hub_;
          // Started from the hub's stack (a start is never a direct switch: see run_direct).
          detail::asan_finish_switch(nullptr, &hub->native_stack_bottom_, &hub->native_stack_size_);
          detail::land(hub->save_to_, std::move(from));
          entry_point(this);
          // Leave for good: the stack goes back to the pool once the hub is running again. The
          // hub stores what it gets back (nothing: this fiber is finished) in our empty ctx_.
          detail::asan_start_switch(nullptr, hub->native_stack_bottom_, hub->native_stack_size_);
          detail::tsan_leave(hub->tsan_native_);
          *hub->eh_globals_ = hub->native_eh_;
          hub->save_to_ = &ctx_;
          return std::move(hub->native_);
        });
  } catch (...) {
    // No stack could be had (see StackPool::allocate): the greenlet fails with that error.
    die_before_start(std::current_exception());
    return;
  }
  state_ = State::running;
  hub_->resume(this, Resume::start);
}

void Greenlet::entry_point(Greenlet* self) {
  try {
    if (self == self->hub_->main_) [[unlikely]] {
      // An exception leaving main lets the others die before main's locals (unwind_barrier.cpp).
      detail::run_behind_barrier([](void* g) { static_cast<Greenlet*>(g)->run(); }, self);
    } else {
      self->run();
    }
  } catch (const boost::context::detail::forced_unwind&) {
    throw;  // Boost.Context is unwinding this stack; never swallow it.
  } catch (const GreenletExit&) {
    self->killed_ = true;
    self->exit_ = std::current_exception();
  } catch (...) {
    self->error_ = std::current_exception();
  }
  self->on_death();
}

detail::LocalSlot* Greenlet::local_slot(std::uint64_t key) const noexcept {
  for (const auto& [k, slot] : locals_) {
    if (k == key) return slot.get();
  }
  return nullptr;
}

void Greenlet::set_local_slot(std::uint64_t key, std::unique_ptr<detail::LocalSlot> slot) {
  for (auto& [k, existing] : locals_) {
    if (k == key) {
      existing = std::move(slot);
      return;
    }
  }
  if (slot) locals_.emplace_back(key, std::move(slot));
}

void Greenlet::destroy_locals() noexcept {
  // Newest first, like automatic variables; a throwing destructor is reported, not fatal.
  while (!locals_.empty()) {
    auto slot = std::move(locals_.back().second);
    locals_.pop_back();
    try {
      slot.reset();
    } catch (...) {
      hub_->report_error(*this, std::current_exception());
    }
  }
}

void Greenlet::on_death() noexcept {
  if (stack_.sp != nullptr && hub_->stacks_.overflowed(stack_)) {
    TENDRIL_ASSERT(false, "stack overflow in greenlet ", describe(), " (dense stacks of ",
                   stack_.size, " bytes have no guard page; raise StackOptions::size_bytes)");
  }
  destroy_locals();  // still on the greenlet's own stack, so getcurrent() is this greenlet
  state_ = State::dead;
  ++wait_seq_;  // a wakeup still queued for its last wait is stale by its seq alone (take_direct)
  death_seq_ = hub_->next_death_seq_++;
  hub_->remove_live(this);
  if (links_next_ < links_.size() && !notify_pending_) schedule_notify();
  if (hub_->pending_throws_ != 0) hub_->note_stale_possible();  // a kill of it may be queued
}

void Greenlet::die_before_start(std::exception_ptr error) {
  Ref<Greenlet> keep(this);
  hub_->note_stale_possible();  // its queued start, if any, does nothing now (Hub::is_stale)
  const bool was_live = state_ == State::scheduled;
  if (start_timer_ != 0) hub_->cancel_timer(std::exchange(start_timer_, 0));
  if (is_greenlet_exit(error)) {
    killed_ = true;
    exit_ = std::move(error);
  } else {
    error_ = std::move(error);
  }
  const bool report = error_ && hub_->main_ != this;
  if (TENDRIL_OBSERVER(hub_) != nullptr) [[unlikely]] {
    hub_->observer_->on_exit(*this, error_, killed_);
  }
  if (was_live) {
    on_death();
  } else {
    state_ = State::dead;
    death_seq_ = hub_->next_death_seq_++;
    if (!links_.empty()) schedule_notify();
  }
  if (report) hub_->report_error(*this, error_);
  if (was_live) release();  // the hub's reference, taken at start()
}

void Greenlet::schedule_notify() {
  notify_pending_ = true;
  add_ref();
  hub_->schedule(Callback{&Greenlet::notify_cb, this, 0});
}

void Greenlet::notify_cb(Callback& cb, bool run) {
  auto* g = static_cast<Greenlet*>(cb.obj);
  if (run) {
    // Links added while notifying (even by a woken joiner) run in this same pass, in order.
    while (g->links_next_ < g->links_.size()) {
      Link link = std::move(g->links_[g->links_next_++]);
      if (link.kind == Link::Kind::joiner) {
        Hub::wake(link.joiner.greenlet, link.joiner.seq, false);
        continue;
      }
      if ((link.kind == Link::Kind::value && !g->successful()) ||
          (link.kind == Link::Kind::exception && g->successful())) {
        continue;
      }
      if (link.kind != Link::Kind::raw) {
        g->spawn_link(std::move(link.fn));
        continue;
      }
      try {
        link.fn(*g);
      } catch (...) {
        g->hub_->report_error(*g, std::current_exception(), ErrorOrigin::rawlink);
      }
    }
    g->links_.clear();
    g->links_next_ = 0;
  }
  // Also when discarded (teardown): a later link() must schedule a new notification.
  g->notify_pending_ = false;
  g->release();
}

LinkId Greenlet::add_link(Link::Kind kind, std::function<void(Greenlet&)> fn, WaitToken joiner) {
  const LinkId id = next_link_id_++;
  links_.push_back(Link{id, kind, std::move(fn), joiner});
  if (dead() && !notify_pending_) schedule_notify();
  return id;
}

LinkId Greenlet::link(std::function<void(Greenlet&)> callback) {
  return add_link(Link::Kind::any, std::move(callback), {});
}

LinkId Greenlet::rawlink(std::function<void(Greenlet&)> callback) {
  return add_link(Link::Kind::raw, std::move(callback), {});
}

void Greenlet::spawn_link(std::function<void(Greenlet&)> fn) {
  // gevent's SpawnedLink switches into a fresh greenlet from the notifying loop, so the link runs
  // until it blocks before the next link fires; entering it here, on the hub's stack, does the
  // same (a queued start would let every later link and callback run first).
  Ref<Greenlet> source(this);
  auto task = detail::new_task(std::string(), [fn = std::move(fn), source]() { fn(*source); });
  task->link_of_ = std::move(source);
  task->state_ = State::scheduled;
  hub_->add_live(task.get());
  if (TENDRIL_OBSERVER(hub_) != nullptr) [[unlikely]] {
    hub_->observer_->on_spawn(*task, nullptr);
  }
  task->begin_start();
}

LinkId Greenlet::link_value(std::function<void(Greenlet&)> callback) {
  return add_link(Link::Kind::value, std::move(callback), {});
}

LinkId Greenlet::link_exception(std::function<void(Greenlet&)> callback) {
  return add_link(Link::Kind::exception, std::move(callback), {});
}

void Greenlet::unlink(LinkId id) noexcept {
  for (std::size_t i = links_next_; i < links_.size(); ++i) {
    if (links_[i].id == id) {
      links_.erase(links_.begin() + static_cast<std::ptrdiff_t>(i));
      // The last link gone while its notification waits in the queue: that one does nothing now.
      if (notify_pending_ && links_.empty()) hub_->note_stale_possible();
      return;
    }
  }
}

bool Greenlet::join(std::optional<Duration> timeout) {
  if (dead()) return true;
  Hub& hub = current_hub("tendril::Greenlet::join");
  Greenlet* me = hub.current();
  if (me == this) {
    throw UsageError("tendril::Greenlet::join: " + describe() +
                     " cannot join itself (it would wait forever)");
  }
  const auto deadline = optional_deadline(hub, timeout, "tendril::Greenlet::join");
  const WaitToken token = hub.begin_wait("tendril::Greenlet::join");
  const LinkId id = add_link(Link::Kind::joiner, {}, token);
  try {
    hub.park(token, "join", this, deadline);
  } catch (...) {
    unlink(id);  // killed while joining: leave no dangling joiner behind
    throw;
  }
  // Unlink even if dead: when our timeout and the target's death land in the same loop turn, the
  // joiner link is still queued for notification and must not outlive this wait.
  unlink(id);
  return dead();
}

bool Greenlet::cancel() {
  if (state_ != State::created && state_ != State::scheduled) return false;
  kill(nullptr, false);
  return true;
}

void Greenlet::kill(std::exception_ptr exception, bool block, std::optional<Duration> timeout) {
  if (dead()) return;
  if (!exception) exception = std::make_exception_ptr(GreenletExit());
  if (state_ != State::running) {
    check_hub("tendril::Greenlet::kill");
    if (TENDRIL_OBSERVER(hub_) != nullptr) [[unlikely]] {
      hub_->observer_->on_kill(*this, hub_->current_);
    }
    die_before_start(std::move(exception));
    return;
  }
  Hub& hub = *hub_;
  if (!block || hub.current() == nullptr) {
    hub.throw_into(*this, std::move(exception));
    return;
  }
  if (timeout && *timeout < Duration::zero()) {
    throw UsageError("tendril::Greenlet::kill: negative timeout (" +
                     std::to_string(timeout->count()) + " ns)");
  }
  // As gevent: the exception is delivered by a callback, which then switches back to us right
  // after the target died (or blocked again), before the target's links run.
  const WaitToken token = hub.begin_wait("tendril::Greenlet::kill");
  hub.throw_into(*this, std::move(exception), token);
  hub.park(token, "kill", this);
  if (!dead()) join(timeout);
}

void Greenlet::wait_for_result(std::optional<Duration> timeout, const char* api) {
  if (!dead()) {
    Hub& hub = current_hub(api);
    if (hub.current() == nullptr) {
      throw UsageError(std::string(api) + ": " + describe() +
                       " has not finished and the caller is not a greenlet, so it cannot wait");
    }
    if (!join(timeout)) throw Timeout();
  }
  if (error_) std::rethrow_exception(error_);
}

// ---- free functions ----

namespace detail {
void throw_negative_sleep(long double ns) {
  char text[64];
  std::snprintf(text, sizeof text, "%.0Lf", ns);
  throw UsageError(std::string("tendril::sleep: negative duration (") + text + " ns)");
}
}  // namespace detail

void detail::sleep0() {
  // A callback, not a timer: every greenlet already ready runs before we resume (gevent).
  Hub* const hub = t_bound_hub;
  if (hub == nullptr) [[unlikely]] {
    throw_no_hub("tendril::sleep");
  }
  hub->sleep0();
}

void Hub::sleep0_other(Greenlet* g) {
  if (direct_armed_ != direct_fast_prefetch) return sleep0_queued(g);
  // Before the front leaves, so one place further than take_direct() looks (a hint: should the
  // short path's checks fail, nothing is lost).
  if (ready_.size() > prefetch_object_ahead + 1) prefetch_ahead(1);
  sleep0_direct(g);
}

void Hub::sleep0_queued(Greenlet* g) {
  const WaitToken token{g, ++g->wait_seq_};
  schedule(yield_callback(token));
  park(token, detail::sleep0_reason, nullptr);
}

void detail::sleep_nonzero(Duration d) {
  Hub& hub = current_hub("tendril::sleep");
  if (d < Duration::zero()) {
    throw UsageError("tendril::sleep: negative duration (" + std::to_string(d.count()) + " ns)");
  }
  const WaitToken token = hub.begin_wait("tendril::sleep");
  hub.park(token, "sleep", nullptr, deadline_after(hub, d, "tendril::sleep"),
           TimerPriority::normal);
}

Greenlet* getcurrent() noexcept {
  Hub* hub = current_hub_or_null();
  return hub ? hub->current() : nullptr;
}

Duration now() { return Duration(current_hub("tendril::now").now_ns()); }

void compute_for(Duration d) {
  Hub& hub = current_hub("tendril::compute_for");
  if (d < Duration::zero()) {
    throw UsageError("tendril::compute_for: negative duration (" + std::to_string(d.count()) +
                     " ns)");
  }
  hub.compute_for(d);
}

std::uint32_t random_below(std::uint32_t n) {
  Hub& hub = current_hub("tendril::random_below");
  if (n == 0) throw UsageError("tendril::random_below: n must be at least 1");
  return n == 1 ? 0 : hub.choose(n);
}

namespace detail {

std::vector<std::size_t> joinall_indexes(std::span<Greenlet* const> greenlets,
                                         std::optional<Duration> timeout, bool raise_error) {
  // gevent's joinall is wait() (or iwait() with raise_error): the greenlets already dead come
  // first, in list order, then the others in the order they die.
  std::vector<std::size_t> done;
  std::vector<std::size_t> pending;
  for (std::size_t i = 0; i < greenlets.size(); ++i) {
    Greenlet* g = greenlets[i];
    if (g == nullptr) continue;
    (g->dead() ? done : pending).push_back(i);
  }
  if (raise_error) {
    for (std::size_t i : done) {
      if (std::exception_ptr e = greenlets[i]->exception()) std::rethrow_exception(e);
    }
  }
  if (pending.empty()) return done;
  Hub& hub = current_hub("tendril::joinall");
  const auto deadline = optional_deadline(hub, timeout, "tendril::joinall");
  if (!raise_error) {
    // Join one after another (as many wakeups as iwait would cost), then order by death.
    for (std::size_t i : pending) {
      Greenlet* g = greenlets[i];
      if (g->dead()) continue;
      std::optional<Duration> left;
      if (deadline) left = Duration(std::max<std::int64_t>(0, *deadline - hub.now_ns()));
      if (!g->join(left)) break;
    }
  } else {
    // Wait for the next death among the pending ones, so that a failure is seen as it happens.
    std::vector<WaitObject> objects;
    objects.reserve(pending.size());
    for (std::size_t i : pending) objects.emplace_back(greenlets[i]);
    std::optional<Duration> left;
    if (deadline) left = Duration(std::max<std::int64_t>(0, *deadline - hub.now_ns()));
    IWait it(std::move(objects), left);
    while (auto obj = it.next()) {
      if (std::exception_ptr e = obj->greenlet()->exception()) std::rethrow_exception(e);
    }
  }
  std::vector<std::size_t> died;
  for (std::size_t i : pending) {
    if (greenlets[i]->dead()) died.push_back(i);
  }
  std::sort(died.begin(), died.end(), [&](std::size_t a, std::size_t b) {
    return greenlets[a]->death_seq_ < greenlets[b]->death_seq_;
  });
  done.insert(done.end(), died.begin(), died.end());
  return done;
}

}  // namespace detail

void killall(std::span<const Ref<Greenlet>> greenlets, std::exception_ptr exception, bool block,
             std::optional<Duration> timeout) {
  if (!exception) exception = std::make_exception_ptr(GreenletExit());
  std::vector<Ref<Greenlet>> running;
  for (const auto& g : greenlets) {
    if (!g || g->dead()) continue;
    if (g->state() != Greenlet::State::running) {
      g->kill(exception, false);  // never started: dies at once, never runs
    } else {
      running.push_back(g);
    }
  }
  if (running.empty()) return;
  Hub& hub = running.front()->hub();
  if (!block || hub.current() == nullptr) {
    hub.throw_into_all(std::move(running), exception);
    return;
  }
  const WaitToken token = hub.begin_wait("tendril::killall");
  std::vector<Ref<Greenlet>> targets = running;
  hub.throw_into_all(std::move(targets), exception, token);
  hub.park(token, "killall", nullptr);
  joinall(running, timeout);
}

}  // namespace tendril
