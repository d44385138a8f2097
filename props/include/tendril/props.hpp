// SPDX-License-Identifier: Apache-2.0
// tendril/props.hpp: property tests over schedules with RapidCheck. A schedule is a vector of
// answers (answer i of the run is answers[i] mod n, then 0 once the vector is exhausted), so
// RapidCheck's shrinking of the vector (shorter, smaller numbers) shrinks the interleaving toward
// plain FIFO: a failing property reports a minimal interleaving. The failing run's schedule is
// also saved as a schedule file (trace/FORMAT.md) that TENDRIL_REPLAY replays.
//
//   TENDRIL_PROP(Pool, ImapUnorderedKeepsEveryResult, (int workers)) {
//     const auto schedule = *tendril::props::schedules();
//     tendril::props::check_under(schedule, [&] { /* body, with RC_ASSERT */ });
//   }
//
// TENDRIL_PROP is RC_GTEST_PROP that also saves RapidCheck's reproduction (its "reproduce="
// string) beside the schedule, as <schedule file minus .schedule>.rapidcheck: the printed
// TENDRIL_REPLAY command then regenerates the same inputs (`workers` above) and replays the same
// schedule, and reports the same failure; a replay saves nothing. A property whose only input is
// the schedule may use RC_GTEST_PROP. RapidCheck's own RC_PARAMS="reproduce=..." works too.
#pragma once

#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

namespace rc::detail {
// RapidCheck's listener for every property (librapidcheck defines it; no public header declares
// it): what checkTestable() uses, so a reproduced case prints as any other.
TestListener& globalTestListener();
}  // namespace rc::detail

namespace tendril::props {

// VectorChooser answers from a vector: answers[i] mod n for the i-th choice, 0 once exhausted.
class VectorChooser final : public Chooser {
 public:
  explicit VectorChooser(std::vector<std::uint32_t> answers) : answers_(std::move(answers)) {}
  std::uint32_t choose(const ChoicePoint& point) override {
    return next_ < answers_.size() ? answers_[next_++] % point.n : (++next_, 0u);
  }
  std::string describe() const override;

 private:
  std::vector<std::uint32_t> answers_;
  std::size_t next_ = 0;
};

// schedules() generates answer vectors of up to max_length answers below max_answer; shrinking
// removes answers and lowers them toward 0 (FIFO), and an answer a picks alternative a mod n.
// The default max_answer (65536) reaches every alternative of any choice up to that wide, nearly
// uniformly; a smaller one (it was 8) can never pick the alternatives at and past it.
rc::Gen<std::vector<std::uint32_t>> schedules(std::size_t max_length = 64,
                                              std::uint32_t max_answer = 65536);

// RunResult is one run of a body under a schedule.
struct RunResult {
  std::string failure;  // empty when the body passed
  Schedule schedule;    // every choice the run made, named
  std::uint64_t hash = 0;
  std::vector<ChoiceRecord> choices() const { return schedule.choices; }
};

// run_under() runs body inside tendril::run on a fresh SimHub answering from `answers`, and
// records the schedule; it never throws for a failing body (see RunResult::failure).
RunResult run_under(const std::vector<std::uint32_t>& answers, const std::function<void()>& body,
                    const std::string& test = "props", const SimOptions& options = {});

// check_under() is run_under() for a RapidCheck property inside a GoogleTest test: when the body
// fails (an exception in any greenlet, RC_ASSERT, a Deadlock, a livelock at the step limit), it
// saves the schedule as <TENDRIL_ARTIFACTS or tendril-artifacts>/<Suite_Name>.schedule (an
// absolute path) and fails the case with the error, the file and the command that replays it.
// RapidCheck then shrinks; the file is rewritten by every failing run, so it ends up holding the
// minimal one. With TENDRIL_REPLAY naming a schedule of this test, it replays that file instead
// of `answers` and saves nothing (a Divergence is the failure).
void check_under(const std::vector<std::uint32_t>& answers, const std::function<void()>& body,
                 const SimOptions& options = {});

// schedule_path() is where check_under() saves the current test's schedule (absolute);
// reproduction_path() is the .rapidcheck file TENDRIL_PROP keeps beside a schedule file.
std::string schedule_path(const std::string& test);
std::string reproduction_path(const std::string& schedule_file);

namespace detail {

// The parts of check_property() that need no template.
std::string current_test();
// replay_reproduction() reads the reproduction saved beside TENDRIL_REPLAY's schedule (empty
// when not replaying or none was saved); save_reproduction() writes one beside `test`'s schedule.
std::string replay_reproduction();
void save_reproduction(const std::string& test, const std::string& reproduce);

// check_property() runs a RapidCheck property as GoogleTest's RC_GTEST_PROP does, and on a
// failure also saves RapidCheck's reproduction beside the schedule; when replaying a schedule
// with one, it regenerates exactly that case.
template <typename Testable>
void check_property(Testable&& testable) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  rc::detail::TestMetadata metadata;
  metadata.id = std::string(info->test_suite_name()) + "/" + info->name();
  metadata.description = info->name();
  const std::string reproduce = replay_reproduction();
  const rc::detail::TestResult result = [&] {
    if (reproduce.empty())
      return rc::detail::checkTestable(std::forward<Testable>(testable), metadata);
    const rc::detail::Configuration config =
        rc::detail::configFromString(reproduce, rc::detail::configuration());
    return rc::detail::checkProperty(rc::detail::toProperty(std::forward<Testable>(testable)),
                                     metadata, config.testParams, rc::detail::globalTestListener(),
                                     config.reproduce);
  }();
  if (result.template is<rc::detail::SuccessResult>()) return;
  if (result.template is<rc::detail::FailureResult>() && reproduce.empty()) {
    rc::detail::Configuration config;
    config.reproduce[metadata.id] = result.template get<rc::detail::FailureResult>().reproduce;
    save_reproduction(current_test(), rc::detail::configToMinimalString(config));
  }
  std::ostringstream out;
  rc::detail::printResultMessage(result, out);
  ADD_FAILURE() << out.str();
}

}  // namespace detail
}  // namespace tendril::props

// TENDRIL_PROP(Suite, Name, (args...)) { body } declares a RapidCheck property as a GoogleTest
// test, as RC_GTEST_PROP does, whose failures replay with all their inputs (see the top).
#define TENDRIL_PROP(suite, name, arg_list)                                        \
  void tendril_prop_impl_##suite##_##name arg_list;                                \
  TEST(suite, name) {                                                              \
    ::tendril::props::detail::check_property(&tendril_prop_impl_##suite##_##name); \
  }                                                                                \
  void tendril_prop_impl_##suite##_##name arg_list
