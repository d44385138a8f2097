// SPDX-License-Identifier: Apache-2.0
// sim_hub.cpp: the simulated hub's loop and timers.
#include <algorithm>
#include <cstdio>
#include <limits>
#include <utility>

#include "tendril/sched/assert.hpp"
#include "tendril/sim.hpp"

namespace tendril {

// ---- Random ----

std::uint64_t Random::next() noexcept {
  // splitmix64: tiny, fast, and the same on every platform (unlike std:: distributions).
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint32_t Random::below(std::uint32_t n) {
  // Lemire's multiply-shift with rejection: unbiased, and defined the same everywhere.
  const std::uint64_t bound = n;
  const std::uint64_t threshold = (std::uint64_t{1} << 32) % bound;
  for (;;) {
    const std::uint64_t x = next() >> 32;
    const std::uint64_t m = x * bound;
    if ((m & 0xffffffffULL) >= threshold) return static_cast<std::uint32_t>(m >> 32);
  }
}

std::string Random::describe() const { return "random(seed=" + std::to_string(seed_) + ")"; }

// ---- SimHub ----

SimHub::SimHub(SimOptions options) : SimHub(std::make_unique<Fifo>(), std::move(options)) {}

SimHub::SimHub(std::unique_ptr<Chooser> chooser, SimOptions options)
    : Hub(HubOptions{options.stack}), chooser_(std::move(chooser)), options_(std::move(options)) {
  step_limit_ = options_.max_steps;
  livelock_limit_ = options_.livelock_steps == 0 ? UINT64_MAX : options_.livelock_steps;
  if (!chooser_) throw UsageError("tendril::SimHub: the chooser must not be null");
  adopt_chooser();
}

void SimHub::adopt_chooser() {
  // A policy that always answers 0 (Fifo) is answered inline: sleep(0) then costs no virtual
  // call. A recorder that lends its log is filled here, without chosen() per choice.
  fifo_ = chooser_->always_default();
  policy_ = chooser_->policy();
  log_ = chooser_->inline_log();
  log_zeros_ = log_ != nullptr && policy_->always_default();
  records_ = log_ != nullptr || chooser_->wants_records();
}

void SimHub::begin_teardown() {
  // Killing what is left is not part of the schedule: FIFO, unrecorded, never starved by a
  // policy (PCT could give the kill callback the lowest priority for ever).
  tearing_down_ = true;
  fifo_ = true;
  log_zeros_ = false;
  records_ = false;
}

void SimHub::end_teardown() noexcept {
  if (!tearing_down_) return;
  tearing_down_ = false;
  adopt_chooser();
}

void SimHub::reset(std::unique_ptr<Chooser> chooser) {
  if (!chooser) throw UsageError("tendril::SimHub::reset: the chooser must not be null");
  reset_core();
  for (auto& slot : slots_) {
    if (slot.live) {
      slot.live = false;
      ++slot.gen;
      slot.cb.discard();
    }
  }
  slots_.clear();
  free_slots_.clear();
  heap_.clear();
  // A fresh network too: ports, faults and connections of the last run must not leak into the
  // next one (its timers, which held the connections, are gone already).
  net_.reset();
  batch_.clear();
  live_timers_ = 0;
  next_seq_ = 0;
  scanned_marks_ = 0;
  now_ns_ = 0;
  choices_ = 0;
  hash_ = schedule_hash_basis;
  last_choice_step_ = 0;
  chooser_ = std::move(chooser);
  adopt_chooser();
}

SimHub::~SimHub() {
  for (auto& slot : slots_) {
    if (slot.live) {
      slot.live = false;
      slot.cb.discard();
    }
  }
  discard_ready();
}

std::string SimHub::position() const {
  char time[48];
  std::snprintf(time, sizeof time, "%lld.%09lld s", static_cast<long long>(now_ns_ / 1000000000),
                static_cast<long long>(now_ns_ % 1000000000));
  return std::string("virtual time ") + time + ", step " + std::to_string(steps()) + ", choice " +
         std::to_string(choices_) + ", policy " + chooser_->describe();
}

namespace {

// The alternatives of a ready-queue choice are the queued callbacks, oldest first.
class ReadyPoint final : public ChoicePoint {
 public:
  ReadyPoint(const ReadyQueue& q, std::uint32_t count)
      : ChoicePoint(ChoiceKind::ready, count), q_(q) {}
  Alternative alternative(std::uint32_t i) const override { return identify(q_.peek(i)); }
  void keys(std::uint64_t* out) const override {
    q_.for_each(n, [&out](const Callback& cb) { *out++ = Hub::key_of(cb); });
  }
  std::uint64_t key(std::uint32_t i) const override { return Hub::key_of(q_.peek(i)); }
  Action action(std::uint32_t i) const override { return action_of(q_.peek(i)); }

 private:
  const ReadyQueue& q_;
};

// A random draw has no alternatives to name; the record names the greenlet that drew.
class RandomPoint final : public ChoicePoint {
 public:
  RandomPoint(std::uint32_t count, const Greenlet* drawer)
      : ChoicePoint(ChoiceKind::random, count), drawer_(drawer) {}
  Alternative alternative(std::uint32_t) const override {
    Alternative a;
    if (drawer_ != nullptr) {
      a.greenlet_id = drawer_->id();
      a.greenlet = drawer_;
    }
    return a;
  }

 private:
  const Greenlet* drawer_;
};

}  // namespace

// Once per callback or timer: inlined into the loop, the throw kept out of it.
[[gnu::always_inline]] inline void SimHub::count_and_check_step() {
  count_step();
  if (steps() > step_limit_) [[unlikely]] {
    step_limit_reached();
  }
}

void SimHub::make_record(ChoiceEvent& record, ChoiceKind kind, std::uint32_t n,
                         std::uint32_t answer, std::uint64_t chosen_key, Action action) noexcept {
  record.index = choices_ - 1;
  record.step = steps();
  record.time_ns = now_ns_;
  record.kind = kind;
  record.action = action;
  record.n = n;
  record.answer = answer;
  record.chosen_key = chosen_key;
  // The hash covers the decision and the steps and time since the previous one, so a program
  // that changed between two choices differs at the next.
  hash_ = next_schedule_hash(hash_, record, last_choice_step_);
  last_choice_step_ = record.step;
  record.hash = hash_;
}

void SimHub::record_choice(const ChoicePoint& point, std::uint32_t answer) {
  const std::uint64_t key = point.key(point.kind == ChoiceKind::random ? 0 : answer);
  const Action action = point.chosen_action(answer);
  if (log_ != nullptr) {
    make_record(log_->next(), point.kind, point.n, answer, key, action);
    if (!log_->named(key)) log_->name(key, point.chosen(answer));
    return;
  }
  ChoiceEvent record;
  make_record(record, point.kind, point.n, answer, key, action);
  chooser_->chosen(record, point);
}

// Inlined into the loop: most of a non-Fifo run's time goes through here.
[[gnu::always_inline]] inline std::uint32_t SimHub::decide(const ChoicePoint& point) {
  ++choices_;
  const std::uint32_t answer = policy_->choose(point);
  TENDRIL_ASSERT(answer < point.n, "chooser ", chooser_->describe(), " answered ", answer, " of ",
                 point.n);
  if (Observer* o = observer(); o != nullptr) o->on_choice(point.kind, point.n, answer);
  if (records_) record_choice(point, answer);
  return answer;
}

// decide() for a ready choice when the chooser lends its log (a recorder over Fifo): answer 0,
// recorded here with the record chosen() would have received, without a choice point.
inline void SimHub::record_default_ready(std::size_t n) {
  const auto count = static_cast<std::uint32_t>(std::min<std::size_t>(n, UINT32_MAX));
  ++choices_;
  if (Observer* o = observer(); o != nullptr) [[unlikely]] {
    o->on_choice(ChoiceKind::ready, count, 0);
  }
  const Callback& cb = ready_.peek(0);
  const std::uint64_t key = Hub::key_of(cb);
  make_record(log_->next(), ChoiceKind::ready, count, 0, key, action_of(cb));
  if (!log_->named(key)) [[unlikely]] {
    log_->name(key, identify(cb));
  }
}

std::uint32_t SimHub::choose(std::uint32_t n) {
  TENDRIL_ASSERT(n >= 1, "choose(0)");
  if (n == 1 || fifo_) return 0;
  return decide(RandomPoint(n, current()));
}

void SimHub::verify() const {
  Hub::verify();
  std::size_t live = 0;
  for (const Slot& slot : slots_) live += slot.live ? 1 : 0;
  TENDRIL_ASSERT(live == live_timers_, live, " live timer slots, count says ", live_timers_);
  TENDRIL_ASSERT(std::is_heap(heap_.begin(), heap_.end(), &SimHub::later), "timer heap disordered");
  std::size_t in_heap = 0;
  for (const Entry& e : heap_) {
    TENDRIL_ASSERT(e.slot < slots_.size(), "heap entry names slot ", e.slot);
    in_heap += entry_live(e) ? 1 : 0;
  }
  std::size_t in_batch = 0;
  for (const Entry& e : batch_) in_batch += entry_live(e) ? 1 : 0;
  TENDRIL_ASSERT(in_heap + in_batch == live_timers_, "live timers: ", live_timers_, ", in heap ",
                 in_heap, ", being fired ", in_batch);
  for (const Entry& e : heap_) {
    TENDRIL_ASSERT(!entry_live(e) || e.deadline_ns >= 0, "negative deadline in heap");
  }
}

bool SimHub::later(const Entry& a, const Entry& b) noexcept {
  return a.deadline_ns != b.deadline_ns ? a.deadline_ns > b.deadline_ns : a.seq > b.seq;
}

bool SimHub::entry_live(const Entry& e) const noexcept {
  const Slot& s = slots_[e.slot];
  return s.live && s.gen == e.gen;
}

TimerId SimHub::start_timer(std::int64_t deadline_ns, Callback cb, TimerPriority priority) {
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[slot];
  s.cb = cb;
  s.live = true;
  ++live_timers_;
  heap_.push_back(Entry{std::max(deadline_ns, now_ns_), next_seq_++, slot, s.gen, priority});
  std::push_heap(heap_.begin(), heap_.end(), &SimHub::later);
  return (TimerId{s.gen} << 32) | (slot + 1);
}

void SimHub::cancel_timer(TimerId id) noexcept {
  if (id == 0) return;
  const std::uint32_t slot = static_cast<std::uint32_t>(id & 0xffffffffu) - 1;
  const std::uint32_t gen = static_cast<std::uint32_t>(id >> 32);
  if (slot >= slots_.size()) return;
  Slot& s = slots_[slot];
  if (!s.live || s.gen != gen) return;
  s.live = false;
  ++s.gen;
  free_slots_.push_back(slot);
  --live_timers_;
  Callback cb = s.cb;
  // Cancelled entries stay in the heap until they surface; rebuild when they dominate, so that
  // a loop of short-lived timeouts cannot grow it without bound.
  if (heap_.size() > 64 && heap_.size() > 4 * live_timers_) compact_heap();
  cb.discard();
}

void SimHub::compact_heap() {
  std::erase_if(heap_, [this](const Entry& e) { return !entry_live(e); });
  std::make_heap(heap_.begin(), heap_.end(), &SimHub::later);
}

void SimHub::step_limit_reached() {
  // Leave a little room so that run() can still kill the remaining greenlets cleanly.
  step_limit_ = steps() + options_.max_steps / 16 + 10000;
  throw HubError("tendril::SimHub: step limit of " + std::to_string(options_.max_steps) +
                 " reached at " + position() +
                 "; a greenlet may be spinning without waiting on time (raise "
                 "SimOptions::max_steps if the run is simply long)");
}

void SimHub::livelock_reached(Callback& taken) {
  // Name the greenlets whose sleep(0) resumptions are queued (and the one just taken, whose
  // resumption is dropped: the kills of the teardown end them all), the ones spinning, by id.
  std::vector<const Greenlet*> spinners{&Hub::yielder(taken)};
  for (std::size_t j = 0; j < ready_.size(); ++j) {
    if (Hub::is_yield(ready_.peek(j))) spinners.push_back(&Hub::yielder(ready_.peek(j)));
  }
  std::sort(spinners.begin(), spinners.end(),
            [](const Greenlet* x, const Greenlet* y) { return x->id() < y->id(); });
  std::string names;
  for (std::size_t j = 0; j < spinners.size() && j < 8; ++j) {
    names += (j == 0 ? "" : ", ") + spinners[j]->describe();
  }
  if (spinners.size() > 8) names += " and " + std::to_string(spinners.size() - 8) + " more";
  taken.discard();
  const std::uint64_t spun = steps() - progress_step_ - 1;
  // Let run() kill the spinners cleanly: their kills are progress, and the step limit has room.
  progress_step_ = steps();
  step_limit_ = std::max(step_limit_, steps() + options_.max_steps / 16 + 10000);
  throw Livelock("tendril::SimHub: livelock at " + position() + ": for " + std::to_string(spun) +
                 " steps greenlets only yielded with sleep(0) while virtual time stood still and "
                 "nothing else happened; spinning: " +
                 names +
                 " (SimOptions::livelock_steps raises the bound if the program simply yields "
                 "that long; 0 turns the check off)");
}

void SimHub::restore_batch_from(std::size_t i) {
  // The rest of the batch goes back into the heap, so those timers stay armed for a later run().
  for (std::size_t j = i; j < batch_.size(); ++j) {
    if (entry_live(batch_[j])) {
      heap_.push_back(batch_[j]);
      std::push_heap(heap_.begin(), heap_.end(), &SimHub::later);
    }
  }
  batch_.clear();
}

void SimHub::fire_due_timers() {
  // Only timers armed before this phase are due now; one armed while firing (even with the same
  // deadline) waits for the next loop turn, as in libev.
  const std::uint64_t phase_seq = next_seq_;
  batch_.clear();
  while (!heap_.empty() && heap_.front().deadline_ns <= now_ns_ && heap_.front().seq < phase_seq) {
    std::pop_heap(heap_.begin(), heap_.end(), &SimHub::later);
    if (entry_live(heap_.back())) batch_.push_back(heap_.back());
    heap_.pop_back();
  }
  // Normal-priority timers fire before low-priority ones; each part stays in deadline order.
  std::stable_partition(batch_.begin(), batch_.end(),
                        [](const Entry& e) { return e.priority == TimerPriority::normal; });
  std::size_t i = 0;
  while (i < batch_.size()) {
    // The timers sharing the earliest deadline are the alternatives of one choice; a timer
    // cancelled by an earlier one in this batch is no longer an alternative.
    std::size_t end = i;
    std::uint32_t alive = 0;
    while (end < batch_.size() && batch_[end].deadline_ns == batch_[i].deadline_ns &&
           batch_[end].priority == batch_[i].priority) {
      alive += entry_live(batch_[end]) ? 1 : 0;
      ++end;
    }
    if (alive == 0) {
      i = end;
      continue;
    }
    std::uint32_t pick = 0;
    try {
      if (alive > 1 && !fifo_) {
        // The alternatives are the live timers of this deadline group, in arming order.
        class TimerPoint final : public ChoicePoint {
         public:
          TimerPoint(const SimHub& hub, std::size_t from, std::size_t to, std::uint32_t count)
              : ChoicePoint(ChoiceKind::timer, count), hub_(hub), from_(from), to_(to) {}
          Alternative alternative(std::uint32_t i) const override {
            for (std::size_t k = from_; k < to_; ++k) {
              if (!hub_.entry_live(hub_.batch_[k])) continue;
              if (i-- == 0) return identify(hub_.slots_[hub_.batch_[k].slot].cb);
            }
            return {};
          }

         private:
          const SimHub& hub_;
          std::size_t from_, to_;
        };
        pick = decide(TimerPoint(*this, i, end, alive));
      }
    } catch (...) {
      restore_batch_from(i);
      throw;
    }
    std::size_t k = i;
    for (;; ++k) {
      if (!entry_live(batch_[k])) continue;
      if (pick == 0) break;
      --pick;
    }
    std::rotate(batch_.begin() + static_cast<std::ptrdiff_t>(i),
                batch_.begin() + static_cast<std::ptrdiff_t>(k),
                batch_.begin() + static_cast<std::ptrdiff_t>(k + 1));
    const Entry e = batch_[i];
    if (!entry_live(e)) {
      ++i;
      continue;
    }
    try {
      count_and_check_step();  // before taking the timer, so a HubError leaves it armed
    } catch (...) {
      restore_batch_from(i);
      throw;
    }
    ++i;
    progress_step_ = steps();  // a timer fired: time moves, or at least something is due
    Slot& s = slots_[e.slot];
    Callback cb = s.cb;
    s.live = false;
    ++s.gen;
    free_slots_.push_back(e.slot);
    --live_timers_;
    try {
      cb.invoke();
    } catch (...) {
      restore_batch_from(i);  // a throwing timer callback must not disarm the rest of the batch
      throw;
    }
    if (options_.verify_each_step) verify();
    if (stop_requested()) {
      restore_batch_from(i);
      return;
    }
  }
  batch_.clear();
}

void SimHub::compute_for(Duration d) {
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  now_ns_ = d.count() > max - now_ns_ ? max : now_ns_ + d.count();
}

void SimHub::run_loop() {
  for (;;) {
    if (stop_requested()) return;
    // 1. Callbacks, until the queue is empty, including ones queued meanwhile.
    while (!ready_.empty()) {
      std::size_t n = ready_.size();
      std::size_t i = 0;
      if (n > 1 && !fifo_ && stale_marks() != scanned_marks_) [[unlikely]] {
        // A callback that would do nothing (the wakeup of a wait a kill already ended) is no
        // alternative: drop it before choosing (Hub::is_stale). Only a few events make one, each
        // counted in stale_marks(), so the queue is scanned only after one of them.
        scanned_marks_ = stale_marks();
        n -= ready_.remove_if([](const Callback& cb) { return Hub::is_stale(cb); });
        if (n == 0) continue;
      }
      if (n > 1 && !fifo_) {
        if (log_zeros_) {
          record_default_ready(n);
        } else {
          i = decide(
              ReadyPoint(ready_, static_cast<std::uint32_t>(std::min<std::size_t>(n, UINT32_MAX))));
        }
      }
      count_and_check_step();  // before taking the callback, so a HubError leaves it queued
      Callback cb = ready_.take(i);
      // Livelock: only sleep(0) resumptions since the last progress (see SimOptions).
      if (!Hub::is_yield(cb)) [[likely]] {
        progress_step_ = steps();
      } else if (steps() - progress_step_ > livelock_limit_) [[unlikely]] {
        livelock_reached(cb);
      }
      // In FIFO order a resumed greenlet that parks may take the next step itself (a plain
      // resume, a queue's unlock pass, a notification) and switch straight to the greenlet it
      // wakes: the same steps in the same order, one switch fewer each (Hub::run_direct). Not
      // where each step is verified, nor under an observer.
      if (fifo_ && (Hub::is_plain_resume(cb) || Hub::is_pass(cb)) && !options_.verify_each_step &&
          observer() == nullptr) {
        run_direct(cb);
      } else {
        cb.invoke();
      }
      if (options_.verify_each_step) verify();
      if (stop_requested()) return;
    }
    // 2. Timers that are due, in deadline order.
    fire_due_timers();
    if (stop_requested()) return;
    if (!ready_.empty()) continue;
    // 3. Nothing ready: jump the clock to the next timer (autojump), or report idleness.
    while (!heap_.empty() && !entry_live(heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), &SimHub::later);
      heap_.pop_back();
    }
    if (heap_.empty()) return;
    now_ns_ = std::max(now_ns_, heap_.front().deadline_ns);
  }
}

}  // namespace tendril
