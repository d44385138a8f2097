// tendril/props.hpp: property tests over schedules with RapidCheck. A schedule is a vector of
// answers (answer i of the run is answers[i] mod n, then 0 once the vector is exhausted), so
// RapidCheck's shrinking of the vector (shorter, smaller numbers) shrinks the interleaving toward
// plain FIFO: a failing property reports a minimal interleaving. The failing run's schedule is
// also saved as a schedule file (trace/FORMAT.md) that TENDRIL_REPLAY replays.
//
//   RC_GTEST_PROP(Pool, ImapUnorderedKeepsEveryResult, ()) {
//     const auto schedule = *tendril::props::schedules();
//     tendril::props::check_under(schedule, [] { /* body, with RC_ASSERT */ });
//   }
//
// RapidCheck's own reproduction works too: RC_PARAMS="reproduce=..." as it prints.
#pragma once

#include <rapidcheck.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

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
// removes answers and lowers them toward 0 (FIFO).
rc::Gen<std::vector<std::uint32_t>> schedules(std::size_t max_length = 64,
                                              std::uint32_t max_answer = 8);

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
// fails (an exception, RC_ASSERT, a Deadlock, a livelock at the step limit), it saves the
// schedule as <TENDRIL_ARTIFACTS or tendril-artifacts>/<Suite.Name>.schedule and fails the
// case with the error, the file and the command that replays it. RapidCheck then shrinks; the
// file is rewritten by every failing run, so it ends up holding the minimal one. With
// TENDRIL_REPLAY naming a schedule of this test, it replays that file instead of `answers`.
void check_under(const std::vector<std::uint32_t>& answers, const std::function<void()>& body,
                 const SimOptions& options = {});

}  // namespace tendril::props
