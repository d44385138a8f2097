// SPDX-License-Identifier: Apache-2.0
// Pool determinism properties over schedules (RapidCheck): what holds for every schedule, and a
// property that finds what does not.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>
#include <vector>

#include "tendril/props.hpp"

using namespace std::chrono_literals;
using Item = std::pair<int, int>;  // value, virtual work in ms

namespace {

struct PoolRun {
  std::vector<int> unordered, ordered, mapped;
  std::vector<std::int64_t> completed_at;  // virtual time each yielded result completed
  int peak = 0;
};

// Maps value -> 2*value after `work` ms, in a Pool of `size`, three ways.
PoolRun pool_run(int size, const std::vector<Item>& items) {
  PoolRun out;
  tendril::Pool pool(size);
  int running = 0;
  auto f = [&](Item item) {
    out.peak = std::max(out.peak, ++running);
    tendril::sleep(std::chrono::milliseconds(item.second));
    --running;
    return std::make_pair(item.first * 2, tendril::now().count());
  };
  for (auto [v, t] : pool.imap_unordered(f, items)) {
    out.unordered.push_back(v);
    out.completed_at.push_back(t);
  }
  for (auto [v, t] : pool.imap(f, items)) out.ordered.push_back(v);
  for (auto [v, t] : pool.map(f, items)) out.mapped.push_back(v);
  return out;
}

rc::Gen<std::vector<Item>> items() {
  return rc::gen::container<std::vector<Item>>(
      rc::gen::pair(rc::gen::inRange(0, 100), rc::gen::inRange(0, 4)));
}

}  // namespace

// The same schedule gives the identical imap_unordered sequence, and the identical trace.
RC_GTEST_PROP(PoolProps, SameScheduleSameSequenceAndTrace, ()) {
  const int size = *rc::gen::inRange(1, 5);
  const auto input = *items();
  const auto schedule = *tendril::props::schedules();
  PoolRun a, b;
  const auto ra = tendril::props::run_under(schedule, [&] { a = pool_run(size, input); });
  const auto rb = tendril::props::run_under(schedule, [&] { b = pool_run(size, input); });
  RC_ASSERT(ra.failure.empty());
  RC_ASSERT(a.unordered == b.unordered);
  RC_ASSERT(ra.hash == rb.hash);
  RC_ASSERT(tendril::format_schedule(ra.schedule) == tendril::format_schedule(rb.schedule));
}

// Under any schedule: imap_unordered's multiset is the input mapped; imap and map keep input
// order; the pool never runs more than `size` at once; results come in completion-time order.
RC_GTEST_PROP(PoolProps, ResultsAreTheInputMappedWithinTheSizeLimit, ()) {
  const int size = *rc::gen::inRange(1, 5);
  const auto input = *items();
  const auto schedule = *tendril::props::schedules();
  std::vector<int> expected;
  for (auto [v, t] : input) expected.push_back(v * 2);
  tendril::props::check_under(schedule, [&] {
    const PoolRun r = pool_run(size, input);
    auto sorted = r.unordered;
    std::sort(sorted.begin(), sorted.end());
    auto want = expected;
    std::sort(want.begin(), want.end());
    RC_ASSERT(sorted == want);
    RC_ASSERT(r.ordered == expected);
    RC_ASSERT(r.mapped == expected);
    RC_ASSERT(r.peak <= size);
    RC_ASSERT(std::is_sorted(r.completed_at.begin(), r.completed_at.end()));
  });
}

// spawn() blocks exactly when the pool is full: it switches away (the hub makes progress)
// if and only if full() was true just before.
RC_GTEST_PROP(PoolProps, SpawnBlocksExactlyWhenFull, ()) {
  const int size = *rc::gen::inRange(1, 4);
  const auto work = *rc::gen::container<std::vector<int>>(rc::gen::inRange(0, 3));
  const auto schedule = *tendril::props::schedules();
  tendril::props::check_under(schedule, [&] {
    tendril::Pool pool(size);
    for (int ms : work) {
      const bool was_full = pool.full();
      const std::uint64_t before = tendril::current_hub().steps();
      pool.spawn([ms] { tendril::sleep(std::chrono::milliseconds(ms)); });
      const bool switched = tendril::current_hub().steps() != before;
      RC_ASSERT(switched == was_full);
    }
    pool.join();
  });
}

// With gevent's FIFO order and distinct completion times, imap_unordered yields exactly in order
// of completion time.
RC_GTEST_PROP(PoolProps, FifoYieldsInCompletionOrder, ()) {
  const int size = *rc::gen::inRange(1, 5);
  const auto values = *rc::gen::unique<std::vector<int>>(rc::gen::inRange(0, 50));
  std::vector<Item> input;
  for (int v : values) input.emplace_back(v, v);  // work = value: distinct
  PoolRun r;
  tendril::props::check_under({}, [&] { r = pool_run(size, input); });
  // Expected: simulate the pool's slots (a slot frees when its task ends; ties by start order).
  std::vector<std::pair<std::int64_t, int>> finish;  // (completion ms, value)
  std::vector<std::int64_t> slot_free(static_cast<std::size_t>(size), 0);
  std::int64_t previous_start = 0;  // the feeder spawns in input order
  for (auto [v, work] : input) {
    auto it = std::min_element(slot_free.begin(), slot_free.end());
    const std::int64_t start = std::max(previous_start, *it);
    previous_start = start;
    *it = start + work;
    finish.emplace_back(*it, v * 2);
  }
  RC_ASSERT(std::is_sorted(r.completed_at.begin(), r.completed_at.end()));
  std::vector<std::int64_t> times;
  for (auto& [t, v] : finish) times.push_back(t * 1'000'000);
  std::sort(times.begin(), times.end());
  RC_ASSERT(r.completed_at == times);
}

// The 11th of 11 ready greenlets can run first: schedules()'s answers reach every alternative
// of a wide choice. The property claims it cannot; with a fixed RapidCheck seed, the default
// generator finds the counterexample, and answers below 8 (the old default) never can.
TEST(PoolProps, WideChoicesAreReachable) {
  const auto claim = [](std::optional<std::uint32_t> max_answer) {
    return rc::detail::toProperty([max_answer] {
      const auto schedule =
          max_answer ? *tendril::props::schedules(64, *max_answer) : *tendril::props::schedules();
      int first = -1;
      tendril::props::run_under(schedule, [&] {
        std::vector<tendril::Ref<tendril::Greenlet>> gs;
        for (int i = 0; i < 11; ++i) {
          gs.push_back(tendril::spawn([&first, i] {
            if (first < 0) first = i;
          }));
        }
        tendril::joinall(gs);
      });
      RC_ASSERT(first != 10);
    });
  };
  rc::detail::TestParams params;
  params.seed = 7;
  rc::detail::TestMetadata metadata;
  metadata.id = metadata.description = "the 11th greenlet never runs first";
  const auto wide = rc::detail::checkProperty(claim(std::nullopt), metadata, params,
                                              rc::detail::globalTestListener(), {});
  ASSERT_TRUE(wide.is<rc::detail::FailureResult>());
  const auto& failure = wide.get<rc::detail::FailureResult>();
  EXPECT_NE(failure.description.find("first != 10"), std::string::npos) << failure.description;
  const auto narrow =
      rc::detail::checkProperty(claim(8), metadata, params, rc::detail::globalTestListener(), {});
  EXPECT_TRUE(narrow.is<rc::detail::SuccessResult>());
}

// What does NOT hold: equal-duration completions may come out in a different order under
// another schedule. This property claims the opposite; RapidCheck must find a counterexample.
TEST(PoolProps, EqualDurationCompletionsCanBeReorderedBySchedule) {
  const bool holds = rc::check("imap_unordered order is the same under every schedule", [] {
    const auto schedule = *tendril::props::schedules();
    std::vector<Item> input{{1, 1}, {2, 1}, {3, 1}, {4, 1}};
    PoolRun fifo, other;
    tendril::props::run_under({}, [&] { fifo = pool_run(4, input); });
    tendril::props::run_under(schedule, [&] { other = pool_run(4, input); });
    RC_ASSERT(other.unordered == fifo.unordered);
  });
  EXPECT_FALSE(holds) << "no schedule reordered equal-duration completions";
}
