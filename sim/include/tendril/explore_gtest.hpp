// SPDX-License-Identifier: Apache-2.0
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
// replays one saved schedule. A GoogleTest assertion failing inside the body, in any greenlet,
// fails that schedule. Including this header also installs a check that fails a test process
// whose inherited GTEST_TOTAL_SHARDS/GTEST_SHARD_INDEX leave its --gtest_filter nothing to run.
//
// To spread one exploration over shards, declare it with TENDRIL_EXPLORE_TEST instead: it
// registers one GoogleTest test per shard (Suite.Name/0, /1, ...), each running the seeds s
// with s % shards == its number. The shard count is GTEST_TOTAL_SHARDS when that is set (so
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

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <source_location>
#include <string>
#include <vector>

#include "tendril/explore.hpp"

namespace tendril {

// ExpectationFailed marks a schedule in which a GoogleTest assertion failed; its message is the
// first failed assertion's "file:line: message", so two schedules fail the same way only when
// the same assertion fails with the same values (what minimising compares).
class ExpectationFailed : public std::runtime_error {
 public:
  explicit ExpectationFailed(const std::string& assertion)
      : std::runtime_error("GoogleTest assertion failed: " + assertion) {}
};

namespace detail {

// GtestFailures counts GoogleTest failures as they are reported (a listener, so the usual
// output is untouched) and, while quiet, swallows them (an intercepting reporter), so that
// explore()'s reruns of a failing body report nothing.
class GtestFailures final : public ::testing::EmptyTestEventListener {
 public:
  static GtestFailures& get() {
    static GtestFailures* self = [] {
      auto* listener = new GtestFailures;  // owned by GoogleTest's listener list
      ::testing::UnitTest::GetInstance()->listeners().Append(listener);
      return listener;
    }();
    return *self;
  }
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed()) seen_.push_back(render(r));
  }
  // count() and at(i): failures so far in this mode (reported, or swallowed while quiet).
  std::size_t count() const {
    return swallowed_ ? static_cast<std::size_t>(swallowed_->size()) : seen_.size();
  }
  std::string at(std::size_t i) const {
    return swallowed_ ? render(swallowed_->GetTestPartResult(static_cast<int>(i))) : seen_[i];
  }
  void quiet(bool on) {
    if (on) {
      swallowed_ = std::make_unique<::testing::TestPartResultArray>();
      reporter_ = std::make_unique<::testing::ScopedFakeTestPartResultReporter>(
          ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD,
          swallowed_.get());
    } else {
      reporter_.reset();
      swallowed_.reset();
    }
  }

 private:
  static std::string render(const ::testing::TestPartResult& r) {
    std::string out = r.file_name() ? r.file_name() : "unknown file";
    if (r.line_number() >= 0) out += ":" + std::to_string(r.line_number());
    return out + ": " + r.summary();
  }
  std::vector<std::string> seen_;
  std::unique_ptr<::testing::TestPartResultArray> swallowed_;
  std::unique_ptr<::testing::ScopedFakeTestPartResultReporter> reporter_;
};

// ShardGuard fails a test process that GoogleTest's sharding variables would make run nothing
// and pass: ctest runs one process per test with --gtest_filter, and GTEST_TOTAL_SHARDS /
// GTEST_SHARD_INDEX inherited from a CI environment then send most of those single tests to
// "another shard". It acts only when sharding is on, a filter is given, the filter matches some
// test, and this shard runs none of them.
class ShardGuard final : public ::testing::EmptyTestEventListener {
 public:
  static bool install() {
    ::testing::UnitTest::GetInstance()->listeners().Append(new ShardGuard);  // GoogleTest owns it
    return true;
  }
  void OnTestIterationStart(const ::testing::UnitTest& unit, int) override {
    const char* total = std::getenv("GTEST_TOTAL_SHARDS");
    const char* index = std::getenv("GTEST_SHARD_INDEX");
    if (total == nullptr || index == nullptr || std::atoi(total) <= 1) return;
    const std::string filter = GTEST_FLAG_GET(filter);
    if (filter.empty() || filter == "*" || unit.test_to_run_count() > 0) return;
    int matching = 0;
    for (int i = 0; i < unit.total_test_suite_count(); ++i) {
      const ::testing::TestSuite* suite = unit.GetTestSuite(i);
      for (int j = 0; j < suite->total_test_count(); ++j) {
        const std::string name = std::string(suite->name()) + "." + suite->GetTestInfo(j)->name();
        matching += matches_filter(filter, name) ? 1 : 0;
      }
    }
    if (matching == 0) return;
    std::fprintf(stderr,
                 "tendril: GTEST_TOTAL_SHARDS=%s and GTEST_SHARD_INDEX=%s send the %d test%s that "
                 "--gtest_filter=%s selects to other shards, so this process would run nothing "
                 "and pass. ctest runs one process per test: unset those variables for it (env -u "
                 "GTEST_TOTAL_SHARDS -u GTEST_SHARD_INDEX ctest ...), or register the tests with "
                 "tendril_discover_tests() (cmake/TendrilTesting.cmake), which does.\n",
                 total, index, matching, matching == 1 ? "" : "s", filter.c_str());
    std::fflush(nullptr);
    std::exit(1);
  }

  // matches_filter() applies GoogleTest's filter syntax: positive patterns, then '-' and
  // negative ones, each list ':'-separated, with '*' and '?' wildcards.
  static bool matches_filter(const std::string& filter, const std::string& name) {
    const std::size_t dash = filter.find('-');
    const std::string positive = dash == std::string::npos ? filter : filter.substr(0, dash);
    const std::string negative = dash == std::string::npos ? "" : filter.substr(dash + 1);
    return any_matches(positive.empty() ? "*" : positive, name) &&
           (negative.empty() || !any_matches(negative, name));
  }

 private:
  static bool any_matches(const std::string& patterns, const std::string& name) {
    for (std::size_t from = 0;;) {
      const std::size_t colon = patterns.find(':', from);
      if (glob(patterns.substr(from, colon - from).c_str(), name.c_str())) return true;
      if (colon == std::string::npos) return false;
      from = colon + 1;
    }
  }
  static bool glob(const char* p, const char* s) {
    if (*p == '\0') return *s == '\0';
    if (*p == '*') return glob(p + 1, s) || (*s != '\0' && glob(p, s + 1));
    return *s != '\0' && (*p == '?' || *p == *s) && glob(p + 1, s + 1);
  }
};
inline const bool shard_guard_installed = ShardGuard::install();

// shell_word() quotes a word for a POSIX shell when it needs it.
inline std::string shell_word(const std::string& s) {
  bool plain = !s.empty();
  for (char c : s) {
    plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
                      c == '/' || c == '-' || c == '=' || c == ':' || c == '+' || c == ',');
  }
  if (plain) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace detail

namespace detail {
inline ExploreResult explore_and_report(ExploreOptions options, const std::function<void()>& body,
                                        bool read_shard_env, const char* file, int line) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string name = std::string(info->test_suite_name()) + "." + info->name();
  if (options.test.empty()) options.test = name;
  options.from_env(read_shard_env);
  char exe[4096] = {0};
  const ssize_t len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  const std::string command =
      (len > 0 ? detail::shell_word(std::string(exe, static_cast<std::size_t>(len)))
               : std::string("<test binary>")) +
      " --gtest_filter=" + detail::shell_word(name);
  detail::GtestFailures& failures = detail::GtestFailures::get();
  options.quiet = [&failures](bool on) { failures.quiet(on); };
  ExploreResult result = explore(
      options,
      [&] {
        const std::size_t before = failures.count();
        body();
        if (failures.count() > before) throw ExpectationFailed(failures.at(before));
      },
      command);
  std::cout << result.summary << std::flush;
  if (result.interrupted && result.failures == 0) {
    ADD_FAILURE_AT(file, line) << "exploration interrupted (Ctrl-C) after " << result.schedules_run
                               << " schedules";
    // Then end the process as a Ctrl-C does (explore() has put SIGINT's default back).
    std::fflush(nullptr);
    std::raise(SIGINT);
  }
  if (result.failures > 0) {
    std::string message = result.failure;
    if (!result.save_error.empty()) message += "\nnot saved: " + result.save_error;
    if (!result.schedule_file.empty()) {
      message += "\nschedule: " + result.schedule_file + "\nreplay: " + result.replay_command;
    }
    if (!result.seed_command.empty()) message += "\nseed: " + result.seed_command;
    if (!options.replay.empty()) message = result.failure + "\nreplayed: " + result.schedule_file;
    ADD_FAILURE_AT(file, line) << message;
  }
  return result;
}
}  // namespace detail

// expect_explore() explores body under options (the test name defaults to Suite.Name), prints
// the summary, and on failure adds one GoogleTest failure, at the caller's line, naming the
// failure, the saved schedules and the commands that replay them. A GoogleTest assertion failing
// in any greenlet fails that schedule; it is reported once (the reruns that minimise and trace
// the failure are quiet). A Ctrl-C during it ends the exploration after the schedule in
// progress, prints the summary so far, and ends the process as a Ctrl-C does.
// clang 14 with GCC 12's libstdc++ (Debian 12's) has no std::source_location (libstdc++'s needs
// __builtin_source_location, clang 15 and later): there the caller's file and line come from
// __builtin_FILE() and __builtin_LINE(), which as default arguments are evaluated at the call.
#if defined(__cpp_lib_source_location)
inline ExploreResult expect_explore(ExploreOptions options, const std::function<void()>& body,
                                    bool read_shard_env = true,
                                    std::source_location where = std::source_location::current()) {
  return detail::explore_and_report(std::move(options), body, read_shard_env, where.file_name(),
                                    static_cast<int>(where.line()));
}
#else
inline ExploreResult expect_explore(ExploreOptions options, const std::function<void()>& body,
                                    bool read_shard_env = true, const char* file = __builtin_FILE(),
                                    int line = __builtin_LINE()) {
  return detail::explore_and_report(std::move(options), body, read_shard_env, file, line);
}
#endif

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
              void (*run)(), const char* file, int line)
        : test_(std::move(test)),
          shard_(shard),
          total_(total),
          make_(make),
          run_(run),
          file_(file),
          line_(line) {}
    void TestBody() override {
      ExploreOptions options = make_();
      options.test = test_;  // one identity for every shard: schedules replay from any of them
      options.shard_index = shard_;
      options.total_shards = total_;
      explore_and_report(options, run_, /*read_shard_env=*/false, file_, line_);
    }

   private:
    std::string test_;
    std::uint64_t shard_, total_;
    ExploreOptions (*make_)();
    void (*run_)();
    const char* file_;
    int line_;
  };
  const std::string test = std::string(suite) + "." + name;
  for (std::uint64_t shard = 0; shard < shards; ++shard) {
    const std::string shard_name = std::string(name) + "/" + std::to_string(shard);
    ::testing::RegisterTest(
        suite, shard_name.c_str(), nullptr, nullptr, file, line, [=]() -> ::testing::Test* {
          return new ShardTest(test, shard, shards, make_options, body, file, line);
        });
  }
  return true;
}

}  // namespace detail
}  // namespace tendril

// TENDRIL_EXPLORE_TEST(Suite, Name, shards, options_lambda) { body } declares a sharded
// exploration (see the top of this file). options_lambda takes nothing and returns the
// ExploreOptions; the environment still overrides them. A failure is reported at the macro's
// __LINE__: its first line with GCC, the line where the invocation ends (the options lambda's
// closing `})`) with clang.
#define TENDRIL_EXPLORE_TEST(suite, name, shards, options_lambda)                          \
  static void tendril_explore_body_##suite##_##name();                                     \
  [[maybe_unused]] static const bool tendril_explore_registered_##suite##_##name =         \
      ::tendril::detail::register_exploration(#suite, #name, __FILE__, __LINE__, (shards), \
                                              +(options_lambda),                           \
                                              &tendril_explore_body_##suite##_##name);     \
  static void tendril_explore_body_##suite##_##name()
