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
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

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
inline ExploreResult expect_explore(ExploreOptions options, const std::function<void()>& body) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string name = std::string(info->test_suite_name()) + "." + info->name();
  if (options.test.empty()) options.test = name;
  options.from_env();
  char exe[4096] = {0};
  const ssize_t len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  const std::string command =
      (len > 0 ? std::string(exe, static_cast<std::size_t>(len)) : std::string("<test binary>")) +
      " --gtest_filter=" + name;
  ExploreResult result = explore(options, [&] {
    body();
    if (::testing::Test::HasFailure()) throw ExpectationFailed();
  }, command);
  std::cout << result.summary;
  if (!result.ok()) {
    ADD_FAILURE() << result.failure << "\nschedule: " << result.schedule_file
                  << "\nreplay: " << result.replay_command;
  }
  return result;
}

}  // namespace tendril
