// tendril/sim.hpp: SimHub, the deterministic simulated hub: virtual time in integer nanoseconds,
// autojump to the next timer, and every nondeterministic choice drawn from one Chooser.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tendril/sched.hpp"

namespace tendril {

// Fifo always answers 0, which is gevent's order: callbacks in queueing order, equal-deadline
// timers in arming order.
class Fifo final : public Chooser {
 public:
  std::uint32_t choose(const ChoicePoint&) override { return 0; }
  std::string describe() const override { return "fifo"; }
};

// Random answers uniformly from a generator seeded with `seed` (splitmix64 with an unbiased
// reduction): the same seed gives the same answers on every machine and build.
class Random final : public Chooser {
 public:
  explicit Random(std::uint64_t seed) : seed_(seed), state_(seed) {}
  std::uint32_t choose(const ChoicePoint& point) override { return below(point.n); }
  std::string describe() const override;
  std::uint64_t seed() const noexcept { return seed_; }
  // below(n) draws uniformly from [0, n), n >= 1; the generator other policies build on.
  std::uint32_t below(std::uint32_t n);

 private:
  std::uint64_t next() noexcept;
  std::uint64_t seed_;
  std::uint64_t state_;
};

// SimOptions configures a SimHub.
struct SimOptions {
  StackOptions stack;
  // max_steps bounds each run() (callbacks plus timers): past it the hub stops the run with HubError,
  // so that a greenlet spinning on sleep(0) fails instead of hanging.
  std::uint64_t max_steps = 200'000'000;
  // verify_each_step runs verify() after every callback and timer (libev's ev_verify): slow, for
  // tests that hunt a corrupted structure.
  bool verify_each_step = false;
};

// SimHub runs greenlets in virtual time. Nothing in it reads the wall clock, addresses, thread
// ids or hash order: the same program and the same Chooser answers give the same run.
class SimHub final : public Hub {
 public:
  // SimHub() uses the Fifo policy.
  explicit SimHub(SimOptions options = {});
  // SimHub(chooser) uses the given policy for every choice; it must not be null.
  explicit SimHub(std::unique_ptr<Chooser> chooser, SimOptions options = {});
  // SimHub(policy) is SimHub(std::make_unique<P>(policy)), e.g. SimHub hub{tendril::Random{7}}.
  template <std::derived_from<Chooser> P>
  explicit SimHub(P policy, SimOptions options = {})
      : SimHub(std::make_unique<P>(std::move(policy)), std::move(options)) {}
  ~SimHub() override;

  std::int64_t now_ns() const override { return now_ns_; }
  TimerId start_timer(std::int64_t deadline_ns, Callback cb,
                      TimerPriority priority = TimerPriority::normal) override;
  void cancel_timer(TimerId id) noexcept override;
  std::uint32_t choose(std::uint32_t n) override;
  std::string position() const override;
  // verify() checks the core's and the timers' invariants (see Hub::verify).
  void verify() const override;

  // chooser() is the policy in use.
  Chooser& chooser() noexcept { return *chooser_; }
  // pending_timers() counts armed timers that have neither fired nor been cancelled.
  std::size_t pending_timers() const noexcept { return live_timers_; }
  // timer_heap_entries() counts heap entries, cancelled ones included (bounded: see cancel_timer).
  std::size_t timer_heap_entries() const noexcept { return heap_.size(); }
  // choices() counts the choose() calls that reached the Chooser (those with n >= 2; the Fifo
  // policy is answered inline and never reached).
  std::uint64_t choices() const noexcept { return choices_; }
  // schedule_hash() is the running hash of every recorded choice so far (see ChoiceRecord).
  std::uint64_t schedule_hash() const noexcept { return hash_; }

 protected:
  void run_loop() override;
  void begin_run() override { step_limit_ = steps() + options_.max_steps; }

 private:
  struct Slot {
    Callback cb;
    std::uint32_t gen = 1;
    bool live = false;
  };
  struct Entry {
    std::int64_t deadline_ns;
    std::uint64_t seq;  // arming order: breaks deadline ties
    std::uint32_t slot;
    std::uint32_t gen;
    TimerPriority priority;
  };
  static bool later(const Entry& a, const Entry& b) noexcept;
  bool entry_live(const Entry& e) const noexcept;
  void fire_due_timers();
  void restore_batch_from(std::size_t i);
  void count_and_check_step();
  void compact_heap();
  std::uint32_t decide(const ChoicePoint& point);

  std::unique_ptr<Chooser> chooser_;
  SimOptions options_;
  std::uint64_t step_limit_;
  bool fifo_ = false;
  std::int64_t now_ns_ = 0;
  std::uint64_t choices_ = 0;
  std::uint64_t hash_ = 0xcbf29ce484222325ULL;  // FNV-1a offset basis
  std::uint64_t last_choice_step_ = 0;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::vector<Entry> heap_;   // min-heap on (deadline_ns, seq); may hold cancelled entries
  std::vector<Entry> batch_;  // the timers being fired in this loop turn
  std::size_t live_timers_ = 0;
  std::uint64_t next_seq_ = 0;
};

}  // namespace tendril
