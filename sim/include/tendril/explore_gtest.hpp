// tendril/explore_gtest.hpp: explore() for GoogleTest. Include it in a test file that links
// GTest::gtest; tendril's libraries do not depend on GoogleTest.
//
//   TEST(Bank, TransfersNeverOverdraw) {
//     tendril::ExploreOptions options;
//     options.policy = "pct";
//     options.schedules = 500;
//     tendril::expect_explore(options, [] { /* the test body, on a fresh simulated hub */ });
//   }
//
// The environment overrides the options (see ExploreOptions::from_env); TENDRIL_REPLAY=<file>
// replays one saved schedule. A GoogleTest assertion failing inside the body fails that schedule.
//
// To spread one exploration over shards, declare it with TENDRIL_EXPLORE_TEST instead: it
// registers one GoogleTest test per shard (Suite.Name/0, /1, ...), each running the schedules i
// with i % shards == its number. The shard count is GTEST_TOTAL_SHARDS when that is set (so
// GoogleTest's own sharding, a CI matrix or Bazel's shard_count hands each shard exactly one
// of them), else the `shards` argument (so `ctest -j` runs them in parallel).
//
//   TENDRIL_EXPLORE_TEST(Bank, TransfersNeverOverdraw, 4, [] {
//     tendril::ExploreOptions o;
//     o.policy = "pct";
//     o.schedules = 10000;
//     return o;
//   }) {
//     /* the test body, run on a fresh simulated hub per schedule */
//   }
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "tendril/explore.hpp"

namespace tendril {

// ExpectationFailed marks a schedule in which a GoogleTest assertion failed.
class ExpectationFailed : public std::runtime_error {
 public:
  ExpectationFailed() : std::runtime_error("a GoogleTest expectation failed (see above)") {}
};

// expect_explore() explores body under options (the test name defaults to Suite.Name), prints
// the summary, and on failure adds a GoogleTest failure naming the saved schedule and the command
// that replays it.
inline ExploreResult expect_explore(ExploreOptions options, const std::function<void()>& body,
                                    bool read_shard_env = true) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string name = std::string(info->test_suite_name()) + "." + info->name();
  if (options.test.empty()) options.test = name;
  options.from_env(read_shard_env);
  char exe[4096] = {0};
  const ssize_t len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  const std::string command =
      (len > 0 ? std::string(exe, static_cast<std::size_t>(len)) : std::string("<test binary>")) +
      " --gtest_filter=" + name;
  ExploreResult result = explore(
      options,
      [&] {
        body();
        if (::testing::Test::HasFailure()) throw ExpectationFailed();
      },
      command);
  std::cout << result.summary;
  if (!result.ok()) {
    ADD_FAILURE() << result.failure << "\nschedule: " << result.schedule_file
                  << "\nreplay: " << result.replay_command;
  }
  return result;
}

namespace detail {

// register_exploration() registers the shard tests of one TENDRIL_EXPLORE_TEST.
inline bool register_exploration(const char* suite, const char* name, const char* file, int line,
                                 std::uint64_t shards, ExploreOptions (*make_options)(),
                                 void (*body)()) {
  if (const char* env = std::getenv("GTEST_TOTAL_SHARDS"); env != nullptr && *env != '\0') {
    shards = std::strtoull(env, nullptr, 10);
  }
  if (shards == 0) shards = 1;
  class ShardTest : public ::testing::Test {
   public:
    ShardTest(std::string test, std::uint64_t shard, std::uint64_t total, ExploreOptions (*make)(),
              void (*run)())
        : test_(std::move(test)), shard_(shard), total_(total), make_(make), run_(run) {}
    void TestBody() override {
      ExploreOptions options = make_();
      options.test = test_;  // one identity for every shard: schedules replay from any of them
      options.shard_index = shard_;
      options.total_shards = total_;
      expect_explore(options, run_, /*read_shard_env=*/false);
    }

   private:
    std::string test_;
    std::uint64_t shard_, total_;
    ExploreOptions (*make_)();
    void (*run_)();
  };
  const std::string test = std::string(suite) + "." + name;
  for (std::uint64_t shard = 0; shard < shards; ++shard) {
    const std::string shard_name = std::string(name) + "/" + std::to_string(shard);
    ::testing::RegisterTest(suite, shard_name.c_str(), nullptr, nullptr, file, line,
                            [=]() -> ::testing::Test* {
                              return new ShardTest(test, shard, shards, make_options, body);
                            });
  }
  return true;
}

}  // namespace detail
}  // namespace tendril

// TENDRIL_EXPLORE_TEST(Suite, Name, shards, options_lambda) { body } declares a sharded
// exploration (see the top of this file). options_lambda takes nothing and returns the
// ExploreOptions; the environment still overrides them.
#define TENDRIL_EXPLORE_TEST(suite, name, shards, options_lambda)                          \
  static void tendril_explore_body_##suite##_##name();                                     \
  [[maybe_unused]] static const bool tendril_explore_registered_##suite##_##name =         \
      ::tendril::detail::register_exploration(#suite, #name, __FILE__, __LINE__, (shards), \
                                              +(options_lambda),                           \
                                              &tendril_explore_body_##suite##_##name);     \
  static void tendril_explore_body_##suite##_##name()
