// SPDX-License-Identifier: Apache-2.0
// A user's test binary whose explorations fail on purpose: failure_path_test.cpp runs it in a
// child process, as a user would, and pastes the commands it prints. Not registered with ctest.
#include <gtest/gtest.h>

#include <chrono>

#include "tendril/explore_gtest.hpp"

using namespace std::chrono_literals;

namespace {

// The bank race with the check as a GoogleTest expectation in main.
void bank_race_expect() {
  int balance = 100;
  auto withdraw = [&balance](int amount, int work) {
    for (int i = 0; i < work; ++i) tendril::sleep(0s);
    if (balance >= amount) {
      tendril::sleep(0s);
      balance -= amount;
    }
  };
  auto a = tendril::spawn("withdraw a", withdraw, 80, 0);
  auto b = tendril::spawn("withdraw b", withdraw, 80, 8);
  tendril::joinall({a, b});
  EXPECT_GE(balance, 0) << "overdraft";  // FIXTURE-EXPECT-LINE
}

}  // namespace

// An exploration that fails: the expectation's report once, the exploration's at this line.
TEST(Fixture, BankRaceExpect) {
  tendril::ExploreOptions o;
  o.policy = "random";
  o.schedules = 1000;
  tendril::expect_explore(o, bank_race_expect);  // FIXTURE-EXPLORE-LINE
}

// A sharded exploration that fails in some shard.
TENDRIL_EXPLORE_TEST(Fixture, ShardedRace, 3, [] {  // FIXTURE-SHARDED-LINE
  tendril::ExploreOptions o;
  o.policy = "random";
  o.schedules = 1000;
  return o;
}) {  // FIXTURE-SHARDED-END
  bank_race_expect();
}

// An expectation that fails in a spawned greenlet, not in main, fails the schedule too.
TEST(Fixture, ExpectInGreenlet) {
  tendril::ExploreOptions o;
  o.policy = "fifo";
  tendril::expect_explore(o, [] {
    auto worker = tendril::spawn("worker", [] {
      tendril::sleep(0s);
      EXPECT_EQ(1 + 1, 3);  // FIXTURE-GREENLET-EXPECT-LINE
    });
    worker->join();
  });
}
