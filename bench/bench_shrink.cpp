// SPDX-License-Identifier: Apache-2.0
// bench_shrink: how well and how fast explore() minimises the failures it finds. Planted bugs of
// known minimal depth (the fewest answers away from FIFO any failing schedule needs); for each,
// 20 explorations (random, then pct d=3) from different seeds, each finding a failure and
// shrinking it. Prints, per bug and policy: the depth, the failing schedule's choices away from
// FIFO as found and after shrinking (median, max), the excess over the depth (max), the runs and
// wall time shrinking took (median, max), and exploration's own speed without a failure.
// `bench_shrink find` prints instead how many schedules each policy needs to find each bug.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "seeds.hpp"
#include "tendril/explore.hpp"

using namespace std::chrono_literals;

namespace {

// lost_update(n, noise): `a` reads a counter, yields, writes it back plus one; `b` yields n
// times, then increments at once. Under FIFO a writes before b's increment; the update is lost
// only if b's n runs all go ahead of a's wakeup: exactly n answers away from FIFO. `noise`
// greenlets each yield 20 times and touch nothing (random exploration answers away from FIFO
// among them too; none of that is needed).
void lost_update(int n, int noise) {
  int counter = 0;
  auto a = tendril::spawn("a", [&counter] {
    const int v = counter;
    tendril::sleep(0s);
    counter = v + 1;
  });
  auto b = tendril::spawn("b", [&counter, n] {
    for (int i = 0; i < n; ++i) tendril::sleep(0s);
    ++counter;
  });
  std::vector<tendril::Ref<tendril::Greenlet>> all{a, b};
  for (int i = 0; i < noise; ++i) {
    all.push_back(tendril::spawn([] {
      for (int k = 0; k < 20; ++k) tendril::sleep(0s);
    }));
  }
  tendril::joinall(all);
  if (counter != 2) throw std::logic_error("lost update: counter is " + std::to_string(counter));
}

// lock_order(noise): the lock-order inversion; b first yields once, so FIFO takes both locks in
// a's order; one answer away from FIFO deadlocks it (b started ahead of a): depth 1.
void lock_order(int noise) {
  tendril::Lock l1("l1"), l2("l2");
  auto a = tendril::spawn("a", [&] {
    std::lock_guard<tendril::Lock> g1(l1);
    tendril::sleep(0s);
    std::lock_guard<tendril::Lock> g2(l2);
  });
  auto b = tendril::spawn("b", [&] {
    tendril::sleep(0s);
    std::lock_guard<tendril::Lock> g2(l2);
    tendril::sleep(0s);
    std::lock_guard<tendril::Lock> g1(l1);
  });
  std::vector<tendril::Ref<tendril::Greenlet>> all{a, b};
  for (int i = 0; i < noise; ++i) {
    all.push_back(tendril::spawn([] {
      for (int k = 0; k < 20; ++k) tendril::sleep(0s);
    }));
  }
  tendril::joinall(all);
}

// draw(noise): a greenlet draws random_below(4) and fails on 3: one answer away from the default,
// which shrinking cannot lower.
void draw(int noise) {
  std::vector<tendril::Ref<tendril::Greenlet>> all;
  for (int i = 0; i < noise; ++i) {
    all.push_back(tendril::spawn([] {
      for (int k = 0; k < 20; ++k) tendril::sleep(0s);
    }));
  }
  all.push_back(tendril::spawn("drawer", [] {
    tendril::sleep(0s);
    if (tendril::random_below(4) == 3) throw std::logic_error("drew 3");
  }));
  tendril::joinall(all);
}

// timer_tie(noise): two sleeps end at the same instant; firing the later-armed one first breaks
// an assumption: depth 1 (one timer choice).
void timer_tie(int noise) {
  std::vector<int> order;
  std::vector<tendril::Ref<tendril::Greenlet>> all;
  for (int i = 0; i < noise; ++i) {
    all.push_back(tendril::spawn([] {
      for (int k = 0; k < 20; ++k) tendril::sleep(0s);
    }));
  }
  all.push_back(tendril::spawn([&order] {
    tendril::sleep(1s);
    order.push_back(1);
  }));
  all.push_back(tendril::spawn([&order] {
    tendril::sleep(1s);
    order.push_back(2);
  }));
  tendril::joinall(all);
  if (order.front() != 1) throw std::logic_error("the second sleeper woke first");
}

// long_delay(noise): `a` must run after all 20 steps of `b` (an order violation that needs one
// greenlet starved for long): under FIFO a runs first; each of b's steps must be taken ahead of
// a's wakeup, so random exploration almost never gets there ((1/2)^20 without noise), while a
// priority-based policy does whenever a's priority is below b's.
void long_delay(int noise) {
  bool b_done = false;
  auto a = tendril::spawn("a", [&b_done] {
    tendril::sleep(0s);
    if (b_done) throw std::logic_error("a ran after b finished");
  });
  auto b = tendril::spawn("b", [&b_done] {
    for (int i = 0; i < 20; ++i) tendril::sleep(0s);
    b_done = true;
  });
  std::vector<tendril::Ref<tendril::Greenlet>> all{a, b};
  for (int i = 0; i < noise; ++i) {
    all.push_back(tendril::spawn([] {
      for (int k = 0; k < 20; ++k) tendril::sleep(0s);
    }));
  }
  tendril::joinall(all);
}

// kills_then_lost_update(): five spinners, each killed while its sleep(0) wakeup is queued (a
// kill leaves that wakeup stale), yielding alongside a lost update of depth 2 between `a` and
// `b` (as lost_update(2, 0)).
void kills_then_lost_update() {
  int counter = 0;
  std::vector<tendril::Ref<tendril::Greenlet>> spinners;
  for (int i = 0; i < 5; ++i) {
    spinners.push_back(tendril::spawn([] {
      for (;;) tendril::sleep(0s);
    }));
  }
  auto a = tendril::spawn("a", [&counter] {
    const int v = counter;
    tendril::sleep(0s);
    counter = v + 1;
  });
  auto b = tendril::spawn("b", [&counter, &spinners] {
    for (auto& s : spinners) {
      s->kill(nullptr, false);
      tendril::sleep(0s);
    }
    ++counter;
  });
  tendril::joinall({a, b});
  tendril::killall(spinners);
  if (counter != 2) throw std::logic_error("lost update: counter is " + std::to_string(counter));
}

struct Bug {
  std::string name;
  std::uint64_t depth;
  std::function<void()> body;
};

template <class T>
T median(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? T{} : v[v.size() / 2];
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

// find_table(): schedules to the first failure, per bug and policy: 20 explorations from
// different seeds, each with a budget of 10,000 schedules and no minimising or tracing.
void find_table(const std::vector<Bug>& bugs) {
  struct Policy {
    const char* label;
    const char* policy;
    std::uint32_t depth;
  };
  const Policy policies[] = {{"random", "random", 3},
                             {"pct d=2", "pct", 2},
                             {"pct d=3", "pct", 3},
                             {"pos", "pos", 3},
                             {"portfolio", "portfolio", 3}};
  std::printf("schedules to the first failure (20 explorations per cell, budget 10,000 each):\n");
  std::printf("%-42s", "bug");
  for (const Policy& p : policies) std::printf(" %16s", p.label);
  std::printf("\n%-42s", "");
  for (std::size_t i = 0; i < std::size(policies); ++i) std::printf(" %16s", "found med/max");
  std::printf("\n");
  std::vector<std::vector<std::uint64_t>> all(std::size(policies));
  for (const Bug& bug : bugs) {
    std::printf("%-42s", bug.name.c_str());
    for (std::size_t pi = 0; pi < std::size(policies); ++pi) {
      std::vector<std::uint64_t> schedules;
      for (std::uint64_t trial = 0; trial < 20; ++trial) {
        tendril::ExploreOptions o;
        o.test = "Bench.Find";
        o.policy = policies[pi].policy;
        o.pct_depth = policies[pi].depth;
        o.seed = 1 + trial * 100000;
        o.schedules = 10000;
        o.artifacts = "/tmp/tendril-bench-find";
        o.read_replay_env = false;
        o.shrink_runs = 0;
        o.trace_max_steps = 0;
        o.progress = "off";
        const auto r = tendril::explore(o, bug.body);
        // Not found counts as the whole budget (so the median stays honest).
        schedules.push_back(r.ok() ? 10001 : r.schedules_run);
      }
      const auto found =
          std::count_if(schedules.begin(), schedules.end(), [](auto n) { return n <= 10000; });
      const std::uint64_t med = median(schedules);
      const std::uint64_t max = *std::max_element(schedules.begin(), schedules.end());
      char cell[40];
      std::snprintf(cell, sizeof cell, "%2ld %5s/%-5s", static_cast<long>(found),
                    med > 10000 ? "-" : std::to_string(med).c_str(),
                    max > 10000 ? "-" : std::to_string(max).c_str());
      std::printf(" %16s", cell);
      all[pi].insert(all[pi].end(), schedules.begin(), schedules.end());
    }
    std::printf("\n");
  }
  std::printf("%-42s", "all bugs: found of 20 x bugs, median");
  for (const auto& v : all) {
    const auto found = std::count_if(v.begin(), v.end(), [](auto n) { return n <= 10000; });
    std::printf(" %9ld %6llu", static_cast<long>(found),
                static_cast<unsigned long long>(median(v)));
  }
  std::printf("\n");
}

int main(int argc, char** argv) {
  std::vector<Bug> bugs;
  for (int n : {1, 2, 3, 4}) {
    bugs.push_back({"lost update, depth " + std::to_string(n) + ", 6 noise greenlets",
                    static_cast<std::uint64_t>(n), [n] { lost_update(n, 6); }});
  }
  bugs.push_back({"lost update, depth 2, no noise", 2, [] { lost_update(2, 0); }});
  bugs.push_back({"random draw, 6 noise greenlets", 1, [] { draw(6); }});
  bugs.push_back({"equal-deadline timers, 6 noise greenlets", 1, [] { timer_tie(6); }});
  bugs.push_back({"lock-order deadlock, 6 noise greenlets", 1, [] { lock_order(6); }});
  if (argc > 1 && std::string(argv[1]) == "find") {
    bugs.push_back({"lost update, 2 far entries, 8 noise", 2, seeds::lost_update_far});
    bugs.push_back({"a starved past b's 20 steps, no noise", 20, [] { long_delay(0); }});
    bugs.push_back({"a starved past b's 20 steps, 6 noise", 20, [] { long_delay(6); }});
    bugs.push_back({"lost update among killed spinners", 5, kills_then_lost_update});
    find_table(bugs);
    return 0;
  }

  std::printf("%-42s %-6s %5s %9s %9s %7s %9s %9s %9s\n", "bug", "policy", "depth", "found",
              "shrunk", "excess", "runs", "ms", "found in");
  std::printf("%-42s %-6s %5s %9s %9s %7s %9s %9s %9s\n", "", "", "", "med/max", "med/max", "max",
              "med/max", "med/max", "med sched");
  int worst_excess = 0;
  for (const Bug& bug : bugs) {
    for (const char* policy : {"random", "pct"}) {
      std::vector<std::uint64_t> found, shrunk, runs, schedules;
      std::vector<double> ms;
      int excess = 0;
      for (std::uint64_t trial = 0; trial < 20; ++trial) {
        tendril::ExploreOptions o;
        o.test = "Bench.Shrink";
        o.policy = policy;
        o.seed = 1 + trial * 100000;
        o.schedules = 100000;
        o.artifacts = "/tmp/tendril-bench-shrink";
        o.read_replay_env = false;
        o.shrink_runs = 0;
        // Find the failure first, then time the shrinking alone.
        const auto plain = tendril::explore(o, bug.body);
        if (plain.ok()) {
          std::printf("%-42s %-6s not found in %llu schedules\n", bug.name.c_str(), policy,
                      static_cast<unsigned long long>(plain.schedules_run));
          continue;
        }
        o.seed = plain.seed;  // the failing schedule's seed reruns as schedule 0
        o.schedules = 1;
        o.shrink_runs = 2000;
        const auto t0 = std::chrono::steady_clock::now();
        const auto r = tendril::explore(o, bug.body);
        ms.push_back(seconds_since(t0) * 1000);
        found.push_back(r.found_away);
        shrunk.push_back(r.minimal_away);
        runs.push_back(r.shrink_runs);
        schedules.push_back(plain.schedules_run);
        excess = std::max(excess, static_cast<int>(r.minimal_away) - static_cast<int>(bug.depth));
      }
      worst_excess = std::max(worst_excess, excess);
      std::printf(
          "%-42s %-6s %5llu %4llu/%-4llu %4llu/%-4llu %7d %4llu/%-4llu %4.1f/%-4.1f %9llu\n",
          bug.name.c_str(), policy, static_cast<unsigned long long>(bug.depth),
          static_cast<unsigned long long>(median(found)),
          static_cast<unsigned long long>(
              found.empty() ? 0 : *std::max_element(found.begin(), found.end())),
          static_cast<unsigned long long>(median(shrunk)),
          static_cast<unsigned long long>(
              shrunk.empty() ? 0 : *std::max_element(shrunk.begin(), shrunk.end())),
          excess, static_cast<unsigned long long>(median(runs)),
          static_cast<unsigned long long>(
              runs.empty() ? 0 : *std::max_element(runs.begin(), runs.end())),
          median(ms), ms.empty() ? 0.0 : *std::max_element(ms.begin(), ms.end()),
          static_cast<unsigned long long>(median(schedules)));
    }
  }
  std::printf("worst excess over the minimal depth: %d (target: at most 2)\n", worst_excess);

  // Exploration without a failure, through explore() (failure checks included) and through a
  // bare reset+run loop (what explore() cost per schedule before), in the same run.
  auto passing = [] {
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 10; ++i) {
      gs.push_back(tendril::spawn([] {
        for (int k = 0; k < 10; ++k) tendril::sleep(0s);
      }));
    }
    tendril::joinall(gs);
  };
  for (const char* policy : {"random", "pct"}) {
    tendril::ExploreOptions o;
    o.test = "Bench.Passing";
    o.policy = policy;
    o.schedules = 50000;
    o.read_replay_env = false;
    o.pct_steps = 120;
    auto t0 = std::chrono::steady_clock::now();
    const auto r = tendril::explore(o, passing);
    const double with_explore = static_cast<double>(r.schedules_run) / seconds_since(t0);
    tendril::SimHub hub;
    t0 = std::chrono::steady_clock::now();
    for (std::uint64_t seed = 1; seed <= o.schedules; ++seed) {
      std::unique_ptr<tendril::Chooser> c;
      if (std::string(policy) == "random") {
        c = std::make_unique<tendril::Random>(seed);
      } else {
        c = std::make_unique<tendril::Pct>(seed, 3, 120);
      }
      hub.reset(std::make_unique<tendril::RecordingChooser>(std::move(c)));
      tendril::run(hub, passing);
    }
    const double bare = static_cast<double>(o.schedules) / seconds_since(t0);
    std::printf(
        "passing exploration, %s: explore() %.0f schedules/s, bare recorded loop %.0f "
        "schedules/s (%.2fx)\n",
        policy, with_explore, bare, with_explore / bare);
  }
  return 0;
}
