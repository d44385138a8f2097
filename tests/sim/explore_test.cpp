// Exploration of schedules: policies find the bank race (Fifo never does), failing schedules are
// saved and replay, deadlocks and livelocks are failures with a schedule, sharding splits seeds.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "seeds.hpp"
#include "tendril/explore_gtest.hpp"

using namespace std::chrono_literals;

namespace {

std::string artifacts() {
  return (std::filesystem::temp_directory_path() / "tendril-explore-test").string();
}

tendril::ExploreOptions options(const char* policy, std::uint64_t schedules = 1000) {
  tendril::ExploreOptions o;
  o.test = "Explore.BankRace";
  o.policy = policy;
  o.schedules = schedules;
  o.pct_depth = 2;
  o.artifacts = artifacts();
  return o;
}

// The bank race made correct: the check and the withdrawal hold one lock.
void locked_transfers() {
  tendril::Lock lock;
  int balance = 100;
  auto withdraw = [&](int amount) {
    std::lock_guard<tendril::Lock> guard(lock);
    if (balance >= amount) {
      tendril::sleep(0s);
      balance -= amount;
    }
  };
  tendril::joinall({tendril::spawn(withdraw, 80), tendril::spawn(withdraw, 80)});
  EXPECT_EQ(balance, 20);
}

}  // namespace

// Fifo (gevent's order) never breaks the race; Random does; PCT does in fewer schedules; the
// saved schedule replays the same failure.
TEST(Explore, PoliciesFindTheBankRaceAndItReplays) {
  const auto fifo = tendril::explore(options("fifo"), seeds::bank_race);
  EXPECT_TRUE(fifo.ok());
  EXPECT_EQ(fifo.schedules_run, 1u);
  const auto random = tendril::explore(options("random"), seeds::bank_race);
  ASSERT_FALSE(random.ok());
  EXPECT_EQ(random.failure, "std::logic_error: overdraft: balance is -60");
  const auto pct = tendril::explore(options("pct"), seeds::bank_race);
  ASSERT_FALSE(pct.ok());
  EXPECT_LT(pct.schedules_run, random.schedules_run);
  EXPECT_NE(pct.summary.find("probability >="), std::string::npos) << pct.summary;
  auto replay = options("random");
  replay.replay = random.schedule_file;
  const auto again = tendril::explore(replay, seeds::bank_race);
  EXPECT_EQ(again.failure, random.failure);
  EXPECT_NE(random.replay_command.find("TENDRIL_REPLAY=" + random.schedule_file),
            std::string::npos);
}

// The failing schedule is replayed once more under a tracer: its flow trace lands beside the
// schedule file. With no renderer installed (viz not linked) the summary says how to draw it.
TEST(Explore, AFailureLeavesItsFlowTraceBesideTheSchedule) {
  auto o = options("random");
  o.test = "Explore.FlowTrace";  // its own files: ctest runs the other explorations in parallel
  const auto random = tendril::explore(o, seeds::bank_race);
  ASSERT_FALSE(random.ok());
  const std::string base = random.schedule_file.substr(0, random.schedule_file.size() - 9);
  EXPECT_EQ(random.trace_file, base + ".trace");
  EXPECT_EQ(random.flow_file, "");
  const tendril::trace::Trace trace = tendril::trace::load_trace(random.trace_file);
  EXPECT_EQ(trace.test, "Explore.FlowTrace");
  ASSERT_FALSE(trace.events.empty());
  EXPECT_EQ(trace.events[trace.events.size() - 2].reason,
            "std::logic_error: overdraft: balance is -60");  // main's exit, then its switch
  EXPECT_NE(random.summary.find("draw its flow graph with: tendril-viz " + random.trace_file +
                                " -o " + base + ".svg"),
            std::string::npos)
      << random.summary;
}

// The delay-bounded DFS explores every schedule within its bound, then stops; raising the bound
// finds more schedules.
TEST(Explore, DfsEnumeratesWithinTheBound) {
  auto body = [] {
    auto a = tendril::spawn([] { tendril::sleep(0s); });
    auto b = tendril::spawn([] { tendril::sleep(0s); });
    tendril::joinall({a, b});
  };
  auto o = options("dfs", 100000);
  o.test = "Explore.Dfs";
  o.dfs_bound = 0;
  const auto zero = tendril::explore(o, body);
  EXPECT_EQ(zero.schedules_run, 1u);
  o.dfs_bound = 1;
  const auto one = tendril::explore(o, body);
  o.dfs_bound = 2;
  const auto two = tendril::explore(o, body);
  EXPECT_GT(one.schedules_run, 1u);
  EXPECT_GT(two.schedules_run, one.schedules_run);
  EXPECT_EQ(two.distinct, two.schedules_run);  // each schedule is a different interleaving
  EXPECT_TRUE(two.ok());
}

// A schedule that deadlocks is a failure with the Deadlock report and a saved schedule.
TEST(Explore, DeadlockIsAFailureWithSchedule) {
  auto o = options("random", 50);
  o.test = "Explore.Deadlock";
  const auto r = tendril::explore(o, [] {
    tendril::Lock l1("l1"), l2("l2");
    auto a = tendril::spawn([&] {
      std::lock_guard<tendril::Lock> g1(l1);
      tendril::sleep(0s);
      std::lock_guard<tendril::Lock> g2(l2);
    });
    auto b = tendril::spawn([&] {
      std::lock_guard<tendril::Lock> g2(l2);
      tendril::sleep(0s);
      std::lock_guard<tendril::Lock> g1(l1);
    });
    tendril::joinall({a, b});
  });
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.failure.find("tendril::Deadlock: tendril: deadlock at"), std::string::npos)
      << r.failure;
  EXPECT_TRUE(std::filesystem::exists(r.schedule_file));
}

// A livelock is stopped by the step limit and saved like any failure.
TEST(Explore, LivelockHitsStepLimitAndIsSaved) {
  auto o = options("random", 5);
  o.test = "Explore.Livelock";
  o.sim.max_steps = 5000;
  const auto r = tendril::explore(o, [] {
    auto spinner = tendril::spawn([] {
      for (;;) tendril::sleep(0s);
    });
    spinner->join();
  });
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.failure.find("step limit of 5000 reached"), std::string::npos) << r.failure;
  EXPECT_TRUE(std::filesystem::exists(r.schedule_file));
}

// Replaying a missing file, or a schedule of another test, is a clear error.
TEST(Explore, BadReplayFiles) {
  auto o = options("random");
  o.replay = "/nonexistent/x.schedule";
  EXPECT_THROW(tendril::explore(o, seeds::bank_race), tendril::ScheduleError);
  const auto random = tendril::explore(options("random"), seeds::bank_race);
  ASSERT_FALSE(random.ok());
  o.replay = random.schedule_file;
  o.test = "Another.Test";
  try {
    tendril::explore(o, seeds::bank_race);
    ADD_FAILURE() << "no ScheduleError";
  } catch (const tendril::ScheduleError& e) {
    EXPECT_NE(std::string(e.what()).find("is a schedule of test 'Explore.BankRace', not of "
                                         "'Another.Test'"),
              std::string::npos)
        << e.what();
  }
}

// Shards run disjoint schedules that together cover all of them.
TEST(Explore, ShardsSplitTheSchedules) {
  std::uint64_t total = 0;
  for (std::uint64_t shard = 0; shard < 3; ++shard) {
    auto o = options("random", 30);
    o.test = "Explore.Shards";
    o.total_shards = 3;
    o.shard_index = shard;
    total += tendril::explore(o, [] { tendril::sleep(0s); }).schedules_run;
  }
  EXPECT_EQ(total, 30u);
}

// Malformed environment overrides are UsageErrors naming the variable.
TEST(Explore, BadEnvironmentValues) {
  ::setenv("TENDRIL_SCHEDULES", "lots", 1);
  try {
    tendril::ExploreOptions().from_env();
    ADD_FAILURE() << "no UsageError";
  } catch (const tendril::UsageError& e) {
    EXPECT_NE(
        std::string(e.what()).find("TENDRIL_SCHEDULES must be a non-negative integer, got 'lots'"),
        std::string::npos);
  }
  ::unsetenv("TENDRIL_SCHEDULES");
  ::setenv("TENDRIL_POLICY", "chaos", 1);
  EXPECT_THROW(tendril::ExploreOptions().from_env(), tendril::UsageError);
  ::unsetenv("TENDRIL_POLICY");
}

// The GoogleTest helper: a correct body passes every schedule, and the summary is printed.
TEST(Explore, ExpectExploreOnACorrectBody) {
  tendril::ExploreOptions o;
  o.policy = "pct";
  o.schedules = 50;
  o.artifacts = artifacts();
  const auto r = tendril::expect_explore(o, locked_transfers);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.schedules_run, 50u);
}

// A sharded exploration: registered as Explore.ShardedBank/0../2 (or one test per GoogleTest
// shard when GTEST_TOTAL_SHARDS is set); each shard runs a third of the schedules of a correct
// (locked) transfer, and any of them would save a failing schedule.
TENDRIL_EXPLORE_TEST(Explore, ShardedBank, 3, [] {
  tendril::ExploreOptions o;
  o.policy = "random";
  o.schedules = 90;
  o.artifacts = artifacts();
  return o;
}) {
  locked_transfers();
}
