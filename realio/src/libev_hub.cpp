// libev_hub.cpp: the real hub on libev. The only file of tendril that includes <ev.h>.
#include <ev.h>

#include <cstdio>
#include <map>
#include <stdexcept>

#include "tendril/realio.hpp"

namespace tendril {

struct LibevHub::Impl {
  struct Timer {
    ev_timer watcher;  // first member: the watcher pointer is the Timer pointer
    Impl* impl;
    TimerId id;
    Callback cb;
  };

  struct ev_loop* loop = nullptr;
  double start = 0;
  std::uint64_t rng;
  TimerId next_id = 1;
  std::map<TimerId, Timer*> timers;  // by id: ordered, so teardown is deterministic

  static void fire(struct ev_loop* loop, ev_timer* w, int) {
    auto* t = reinterpret_cast<Timer*>(w);
    Impl* impl = t->impl;
    ev_timer_stop(loop, w);
    impl->timers.erase(t->id);
    Callback cb = t->cb;
    delete t;
    // As gevent on libev: a greenlet woken by a timer runs right here, before the next due
    // timer; callbacks it queues run after all due timers, in the next turn.
    cb.invoke();
  }
};

LibevHub::LibevHub(LibevOptions options) : Hub(HubOptions{options.stack}), impl_(new Impl) {
  impl_->loop = ev_loop_new(EVFLAG_AUTO);
  if (impl_->loop == nullptr) {
    throw std::runtime_error("tendril::LibevHub: libev could not create a loop (ev_loop_new)");
  }
  ev_now_update(impl_->loop);
  impl_->start = ev_now(impl_->loop);
  impl_->rng = options.seed;
}

LibevHub::~LibevHub() {
  for (auto& [id, t] : impl_->timers) {
    ev_timer_stop(impl_->loop, &t->watcher);
    t->cb.discard();
    delete t;
  }
  impl_->timers.clear();
  discard_ready();
  ev_loop_destroy(impl_->loop);
}

std::int64_t LibevHub::now_ns() const {
  return static_cast<std::int64_t>((ev_now(impl_->loop) - impl_->start) * 1e9);
}

TimerId LibevHub::start_timer(std::int64_t deadline_ns, Callback cb, TimerPriority priority) {
  auto* t = new Impl::Timer;
  t->impl = impl_.get();
  t->id = impl_->next_id++;
  t->cb = cb;
  const double after = deadline_ns <= now_ns() ? 0.0 : (deadline_ns - now_ns()) / 1e9;
  ev_timer_init(&t->watcher, &Impl::fire, after, 0.0);
  ev_set_priority(&t->watcher, priority == TimerPriority::low ? -1 : 0);
  ev_timer_start(impl_->loop, &t->watcher);
  impl_->timers.emplace(t->id, t);
  return t->id;
}

void LibevHub::cancel_timer(TimerId id) noexcept {
  auto it = impl_->timers.find(id);
  if (it == impl_->timers.end()) return;
  Impl::Timer* t = it->second;
  impl_->timers.erase(it);
  ev_timer_stop(impl_->loop, &t->watcher);
  Callback cb = t->cb;
  delete t;
  cb.discard();
}

std::uint32_t LibevHub::choose(std::uint32_t n) {
  if (n <= 1) return 0;
  // splitmix64 with rejection, as Random: seeded, the same on every platform.
  const std::uint64_t threshold = (std::uint64_t{1} << 32) % n;
  for (;;) {
    std::uint64_t z = (impl_->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    const std::uint64_t m = ((z ^ (z >> 31)) >> 32) * n;
    if ((m & 0xffffffffULL) >= threshold) return static_cast<std::uint32_t>(m >> 32);
  }
}

std::string LibevHub::position() const {
  char text[96];
  std::snprintf(text, sizeof text, "libev time %.6f s, step %llu", now_ns() / 1e9,
                static_cast<unsigned long long>(steps()));
  return text;
}

std::size_t LibevHub::pending_timers() const noexcept { return impl_->timers.size(); }

void LibevHub::run_loop() {
  for (;;) {
    if (stop_requested()) return;
    // 1. Callbacks until the queue is empty, including ones queued meanwhile (gevent).
    while (!ready_.empty()) {
      count_step();
      Callback cb = ready_.take(0);
      cb.invoke();
      if (stop_requested()) return;
    }
    // 2. Nothing ready: let libev fire due timers, waiting for the next one if none is due.
    if (impl_->timers.empty()) return;  // idle: nothing could ever make anything ready
    ev_run(impl_->loop, EVRUN_ONCE);
  }
}

}  // namespace tendril
