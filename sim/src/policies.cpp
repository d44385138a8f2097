// SPDX-License-Identifier: Apache-2.0
// policies.cpp: PCT, POS and the bounded depth-first explorer.
#include <algorithm>
#include <cmath>

#include "tendril/sim.hpp"

namespace tendril {

Pct::Pct(std::uint64_t seed, std::uint32_t depth, std::uint64_t steps)
    : rng_(seed), seed_(seed), depth_(depth), steps_(steps) {
  if (depth < 1) throw UsageError("tendril::Pct: depth must be at least 1");
  if (steps < 1) throw UsageError("tendril::Pct: steps must be at least 1");
  for (std::uint32_t i = 1; i < depth; ++i) {
    const auto k = static_cast<std::uint32_t>(std::min<std::uint64_t>(steps, UINT32_MAX));
    change_points_.push_back(1 + rng_.below(k));
  }
  std::sort(change_points_.begin(), change_points_.end());
}

std::string Pct::describe() const {
  return "pct(seed=" + std::to_string(seed_) + ",depth=" + std::to_string(depth_) +
         ",steps=" + std::to_string(steps_) + ")";
}

double Pct::probability_bound(std::uint64_t threads, std::uint64_t steps, std::uint32_t depth) {
  if (threads == 0 || steps == 0) return 1.0;
  return 1.0 / (static_cast<double>(threads) * std::pow(static_cast<double>(steps), depth - 1.0));
}

std::uint64_t Pct::new_priority(std::uint64_t key) {
  std::uint64_t* slot;
  if (key < (std::uint64_t{1} << 20)) {
    if (key >= greenlet_priority_.size()) greenlet_priority_.resize(key + 64, 0);
    slot = &greenlet_priority_[key];
  } else {
    slot = &priority_[key];
  }
  if (*slot == 0) {
    // Initial priorities lie above every change-point priority (1..depth-1); random order
    // among threads, ties (vanishingly rare) broken by alternative index.
    *slot = (std::uint64_t{1} << 32) +
            ((std::uint64_t{rng_.below(UINT32_MAX)} << 16) | rng_.below(65536));
    ++seen_;
  }
  return *slot;
}

std::uint32_t Pct::best(const ChoicePoint& point) {
  const std::uint32_t n = point.n;
  if (keys_.size() < n) keys_.resize(n);
  std::uint64_t* const keys = keys_.data();
  point.keys(keys);
  {
    // The common case in one pass: every key a greenlet id whose priority is drawn already.
    const std::size_t known = greenlet_priority_.size();
    const std::uint64_t* const priority = greenlet_priority_.data();
    std::uint32_t best = 0;
    std::uint64_t best_priority = 0;
    bool fast = true;
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint64_t key = keys[i];
      const std::uint64_t p = key < known ? priority[key] : 0;
      fast &= p != 0;  // 0: not a greenlet key, or no priority yet
      if (p > best_priority) {
        best = i;
        best_priority = p;
      }
    }
    if (fast) return best;  // the first maximum, as the loop below picks
  }
  // Otherwise first appearances draw their priorities, in alternative order (deterministic).
  std::uint32_t best = 0;
  std::uint64_t best_priority = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint64_t p = priority_of(keys[i]);
    if (i == 0 || p > best_priority) {
      best = i;
      best_priority = p;
    }
  }
  return best;
}

std::uint32_t Pct::choose(const ChoicePoint& point) {
  if (point.kind == ChoiceKind::random) return rng_.below(point.n);
  ++decisions_;
  std::uint32_t pick = best(point);
  while (next_change_ < change_points_.size() && change_points_[next_change_] == decisions_) {
    // The thread about to run at the i-th change point drops to priority i.
    const std::uint64_t key = keys_[pick];  // best() filled keys_; priority_of made the slot
    (key < (std::uint64_t{1} << 20) ? greenlet_priority_[key] : priority_[key]) = next_change_ + 1;
    ++next_change_;
    pick = best(point);
  }
  return pick;
}

std::uint64_t Pos::priority_of(std::uint64_t key) {
  auto [it, fresh] = priority_.try_emplace(key, 0);
  if (fresh) {
    // 64 random bits; ties (vanishingly rare) go to the earlier alternative.
    it->second = (std::uint64_t{rng_.below(UINT32_MAX)} << 32) | rng_.below(UINT32_MAX);
  }
  return it->second;
}

std::uint32_t Pos::choose(const ChoicePoint& point) {
  if (point.kind == ChoiceKind::random) return rng_.below(point.n);
  const std::uint32_t n = point.n;
  if (keys_.size() < n) keys_.resize(n);
  point.keys(keys_.data());
  // First appearances draw their priorities in alternative order (deterministic).
  std::uint32_t best = 0;
  std::uint64_t best_priority = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint64_t p = priority_of(keys_[i]);
    if (i == 0 || p > best_priority) {
      best = i;
      best_priority = p;
    }
  }
  priority_.erase(keys_[best]);  // its next event draws a new priority
  return best;
}

std::string Pos::describe() const { return "pos(seed=" + std::to_string(seed_) + ")"; }

// RunChooser follows the explorer's prefix, answers 0 beyond it, and records every choice.
class DfsExplorer::RunChooser final : public Chooser {
 public:
  RunChooser(DfsExplorer& owner, std::uint64_t run) : owner_(owner), run_(run) {}
  std::uint32_t choose(const ChoicePoint& point) override {
    const std::size_t i = owner_.path_.size();
    std::uint32_t answer = i < owner_.prefix_.size() ? owner_.prefix_[i] : 0;
    if (answer >= point.n) answer = point.n - 1;  // cannot happen for a deterministic program
    owner_.path_.push_back(Frame{point.n, answer});
    return answer;
  }
  std::string describe() const override {
    return std::string(owner_.bounding_ == DfsBounding::delay ? "dfs(bound=" : "dfs(choices=") +
           std::to_string(owner_.bound_) + ",run=" + std::to_string(run_) + ")";
  }

 private:
  DfsExplorer& owner_;
  std::uint64_t run_;
};

std::unique_ptr<Chooser> DfsExplorer::next_run() {
  if (done_) return nullptr;
  if (runs_ > 0) {
    // Backtrack: the deepest choice that can take its next alternative within the bound.
    std::vector<std::uint32_t> next;
    bool found = false;
    std::uint64_t cost_before = 0;
    // cost(answer): what one answer adds to a schedule's cost under the bounding.
    const auto cost = [this](std::uint32_t answer) -> std::uint64_t {
      return bounding_ == DfsBounding::delay ? answer : (answer != 0 ? 1 : 0);
    };
    std::vector<std::uint64_t> prefix_cost(path_.size() + 1, 0);
    for (std::size_t j = 0; j < path_.size(); ++j)
      prefix_cost[j + 1] = prefix_cost[j] + cost(path_[j].answer);
    for (std::size_t j = path_.size(); j-- > 0;) {
      cost_before = prefix_cost[j];
      const std::uint32_t a = path_[j].answer + 1;
      if (a < path_[j].n && cost_before + cost(a) <= bound_) {
        for (std::size_t k = 0; k < j; ++k) next.push_back(path_[k].answer);
        next.push_back(a);
        found = true;
        break;
      }
    }
    if (!found) {
      done_ = true;
      return nullptr;
    }
    prefix_ = std::move(next);
  }
  path_.clear();
  return std::make_unique<RunChooser>(*this, runs_++);
}

}  // namespace tendril
