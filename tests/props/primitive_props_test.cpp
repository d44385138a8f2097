// SPDX-License-Identifier: Apache-2.0
// Properties of the other primitives over schedules, the shrinking demonstration, and the
// record/replay property over generated program shapes.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <vector>

#include "tendril/props.hpp"

using namespace std::chrono_literals;

// A Queue never loses or duplicates items, and keeps each producer's items in order.
RC_GTEST_PROP(PrimitiveProps, QueueLosesNothingAndKeepsProducerOrder, ()) {
  const int producers = *rc::gen::inRange(1, 4);
  const int consumers = *rc::gen::inRange(1, 4);
  const int per_producer = *rc::gen::inRange(0, 6);
  const int maxsize = *rc::gen::inRange(0, 3);
  const auto schedule = *tendril::props::schedules();
  tendril::props::check_under(schedule, [&] {
    tendril::Queue<std::pair<int, int>> q(maxsize);
    std::vector<std::pair<int, int>> taken;
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    for (int p = 0; p < producers; ++p) {
      gs.push_back(tendril::spawn([&, p] {
        for (int k = 0; k < per_producer; ++k) {
          q.put({p, k});
          if (tendril::random_below(2)) tendril::sleep(0s);
        }
      }));
    }
    const int total = producers * per_producer;
    int remaining = total;
    for (int c = 0; c < consumers; ++c) {
      gs.push_back(tendril::spawn([&] {
        while (remaining > 0) {
          --remaining;
          taken.push_back(q.get());
        }
      }));
    }
    tendril::joinall(gs);
    RC_ASSERT(static_cast<int>(taken.size()) == total);
    std::map<int, int> next;
    for (auto [p, k] : taken) {
      RC_ASSERT(k == next[p]);  // in order, no gap, no duplicate
      ++next[p];
    }
  });
}

// A Semaphore never has more holders than its count; a Lock gives mutual exclusion.
RC_GTEST_PROP(PrimitiveProps, SemaphoreNeverExceedsItsCount, ()) {
  const int count = *rc::gen::inRange(1, 4);
  const int workers = *rc::gen::inRange(1, 7);
  const auto schedule = *tendril::props::schedules();
  tendril::props::check_under(schedule, [&] {
    tendril::Semaphore sem(count);
    tendril::Lock lock;
    int holders = 0, peak = 0, in_lock = 0;
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    for (int w = 0; w < workers; ++w) {
      gs.push_back(tendril::spawn([&] {
        for (int round = 0; round < 2; ++round) {
          sem.acquire();
          peak = std::max(peak, ++holders);
          tendril::sleep(std::chrono::milliseconds(tendril::random_below(2)));
          --holders;
          sem.release();
          std::lock_guard<tendril::Lock> guard(lock);
          RC_ASSERT(++in_lock == 1);
          tendril::sleep(0s);
          --in_lock;
        }
      }));
    }
    tendril::joinall(gs);
    RC_ASSERT(peak <= count);
    RC_ASSERT(sem.counter() == count);
  });
}

// A TimeoutScope fires at exactly its virtual deadline, whatever the interleaving.
RC_GTEST_PROP(PrimitiveProps, TimeoutFiresAtItsDeadline, ()) {
  const int others = *rc::gen::inRange(0, 4);
  const int ms = *rc::gen::inRange(0, 20);
  const auto schedule = *tendril::props::schedules();
  tendril::props::check_under(schedule, [&] {
    for (int i = 0; i < others; ++i) {
      tendril::spawn([] {
        for (int k = 0; k < 3; ++k)
          tendril::sleep(std::chrono::milliseconds(tendril::random_below(7)));
      });
    }
    const auto start = tendril::now();
    bool fired = false;
    try {
      tendril::TimeoutScope t{std::chrono::milliseconds(ms)};
      tendril::sleep(1h);
    } catch (const tendril::Timeout&) {
      fired = true;
    }
    RC_ASSERT(fired);
    RC_ASSERT(tendril::now() - start == std::chrono::milliseconds(ms));
  });
}

// Killing a greenlet blocked in a queue or a semaphore leaves both consistent: no lost item, no
// leaked permit, whichever moment the kill lands.
RC_GTEST_PROP(PrimitiveProps, KillDuringBlockingLeavesPrimitivesConsistent, ()) {
  const int victims = *rc::gen::inRange(1, 4);
  const auto schedule = *tendril::props::schedules();
  tendril::props::check_under(schedule, [&] {
    tendril::Queue<int> q;
    tendril::Semaphore sem(1);
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    int got = 0;
    for (int v = 0; v < victims; ++v) {
      gs.push_back(tendril::spawn([&] {
        std::lock_guard<tendril::Semaphore> guard(sem);
        q.get();
        ++got;
      }));
    }
    auto producer = tendril::spawn([&] {
      q.put(1);
      tendril::sleep(0s);
      q.put(2);
    });
    tendril::sleep(std::chrono::milliseconds(tendril::random_below(2)));
    tendril::killall(gs);
    producer->join();
    RC_ASSERT(static_cast<int>(q.qsize()) + got == 2);
    RC_ASSERT(sem.counter() == 1);
    RC_ASSERT(q.getters() == 0u);
  });
}

namespace {

// The planted bug: a lost update across a sleep(0). Under FIFO the two increments never overlap;
// only a schedule that lets the early reader run before the other's write loses one.
void lost_update() {
  int counter = 0;
  auto increment = [&](int warmup) {
    for (int i = 0; i < warmup; ++i) tendril::sleep(0s);
    const int v = counter;
    tendril::sleep(0s);
    counter = v + 1;
  };
  tendril::joinall({tendril::spawn(increment, 2), tendril::spawn(increment, 0)});
  RC_ASSERT(counter == 2);
}

}  // namespace

// Shrinking: RapidCheck finds the lost update and shrinks its schedule to a handful of choices
// away from FIFO; the saved schedule replays the failure.
TEST(PrimitiveProps, ShrinkingFindsAMinimalLostUpdate) {
  const auto dir = std::filesystem::temp_directory_path() / "tendril-props-shrink";
  std::filesystem::remove_all(dir);
  ::setenv("TENDRIL_ARTIFACTS", dir.c_str(), 1);
  const bool holds = rc::check("no lost update", [] {
    tendril::props::check_under(*tendril::props::schedules(), lost_update);
  });
  ::unsetenv("TENDRIL_ARTIFACTS");
  ASSERT_FALSE(holds) << "RapidCheck did not find the planted lost update";
  const auto path = dir / "PrimitiveProps_ShrinkingFindsAMinimalLostUpdate.schedule";
  const tendril::Schedule minimal = tendril::load_schedule(path.string());
  std::size_t away_from_fifo = 0;
  for (const auto& c : minimal.choices) away_from_fifo += c.answer != 0 ? 1 : 0;
  EXPECT_GE(away_from_fifo, 1u);
  EXPECT_LE(away_from_fifo, 3u) << tendril::format_schedule(minimal);
  // The saved minimal schedule replays the failure, directly and through TENDRIL_REPLAY.
  auto replayer = std::make_unique<tendril::ReplayChooser>(minimal);
  tendril::SimHub hub(std::move(replayer));
  EXPECT_ANY_THROW(tendril::run(hub, lost_update));
  ::setenv("TENDRIL_REPLAY", path.c_str(), 1);
  ::setenv("TENDRIL_ARTIFACTS", dir.c_str(), 1);
  const bool replay_holds = rc::check("no lost update, replayed", [] {
    tendril::props::check_under({}, lost_update);  // the generated schedule is ignored
  });
  ::unsetenv("TENDRIL_REPLAY");
  ::unsetenv("TENDRIL_ARTIFACTS");
  EXPECT_FALSE(replay_holds);
}

namespace {

// A generated program shape: per greenlet, a list of operations.
enum Op { yield, nap, put, take, set, wait_event, draw };

void run_shape(const std::vector<std::vector<int>>& shape, std::vector<int>* log) {
  tendril::Queue<int> q;
  tendril::Event ev;
  std::vector<tendril::Ref<tendril::Greenlet>> gs;
  for (std::size_t g = 0; g < shape.size(); ++g) {
    gs.push_back(tendril::spawn([&, g] {
      for (int op : shape[g]) {
        switch (op) {
          case yield:
            tendril::sleep(0s);
            break;
          case nap:
            tendril::sleep(1ms);
            break;
          case put:
            q.put(static_cast<int>(g));
            break;
          case take:
            try {
              log->push_back(q.get(true, 2ms));
            } catch (const tendril::Empty&) {
              log->push_back(-1);
            }
            break;
          case set:
            ev.set();
            break;
          case wait_event:
            log->push_back(ev.wait(3ms) ? 100 : 101);
            break;
          default:
            log->push_back(static_cast<int>(tendril::random_below(5)));
            break;
        }
      }
    }));
  }
  tendril::joinall(gs);
}

}  // namespace

// For any program shape and any schedule, recording then replaying yields the identical trace
// (every choice, hash for hash) and the identical behaviour.
RC_GTEST_PROP(PrimitiveProps, RecordThenReplayIsIdentical, ()) {
  const auto shape =
      *rc::gen::resize(4, rc::gen::container<std::vector<std::vector<int>>>(
                              rc::gen::container<std::vector<int>>(rc::gen::inRange(0, 7))));
  const auto schedule = *tendril::props::schedules();
  std::vector<int> recorded_log, replayed_log;
  const auto recorded =
      tendril::props::run_under(schedule, [&] { run_shape(shape, &recorded_log); });
  RC_ASSERT(recorded.failure.empty());
  auto replayer = std::make_unique<tendril::ReplayChooser>(recorded.schedule);
  auto* r = replayer.get();
  tendril::SimHub hub(std::move(replayer));
  tendril::run(hub, [&] { run_shape(shape, &replayed_log); });
  r->finish();
  RC_ASSERT(replayed_log == recorded_log);
  RC_ASSERT(hub.schedule_hash() == recorded.hash);
  RC_ASSERT(r->replayed().size() == recorded.schedule.choices.size());
}
