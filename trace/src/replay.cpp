// SPDX-License-Identifier: Apache-2.0
// replay.cpp: recording and replaying the choice stream.
#include <algorithm>

#include "tendril/trace.hpp"

namespace tendril {

RecordingChooser::RecordingChooser(std::unique_ptr<Chooser> inner) : inner_(std::move(inner)) {
  if (!inner_) throw UsageError("tendril::RecordingChooser: the inner chooser must not be null");
  inner_wants_records_ = inner_->wants_records();
}

void RecordingChooser::chosen(const ChoiceEvent& record, const ChoicePoint& point) {
  log_.append(record);
  // Greenlet and object ids are unique within a run, so each key is named once.
  if (!log_.named(record.chosen_key)) log_.name(record.chosen_key, point.chosen(record.answer));
  // A policy that follows its own answers (a replay checks each one) hears of every choice.
  if (inner_wants_records_) inner_->chosen(record, point);
}

Schedule RecordingChooser::schedule(std::string test, std::uint64_t seed) const {
  Schedule s;
  s.test = std::move(test);
  s.policy = inner_->describe();
  s.seed = seed;
  s.choices.reserve(log_.events().size());
  for (const auto& e : log_.events()) {
    ChoiceRecord r;
    static_cast<ChoiceEvent&>(r) = e;
    r.chosen_name = log_.name_of(e.chosen_key);
    s.choices.push_back(std::move(r));
  }
  return s;
}

ReplayChooser::ReplayChooser(Schedule schedule) : schedule_(std::move(schedule)) {}

void ReplayChooser::diverge(const std::string& what, const ChoiceRecord* expected) {
  std::string report = "tendril: replay of " + schedule_.test + " diverged at choice #" +
                       std::to_string(next_) + ": " + what;
  if (expected != nullptr) report += "\n  the schedule recorded: " + describe_choice(*expected);
  const std::size_t from = replayed_.size() > 5 ? replayed_.size() - 5 : 0;
  if (from < replayed_.size()) {
    report += "\n  the last choices before it (all matched):";
    for (std::size_t i = from; i < replayed_.size(); ++i) {
      report += "\n    " + describe_choice(replayed_[i]);
    }
  }
  report +=
      "\n  The program changed since the schedule was recorded, or it depends on something "
      "outside the simulation (wall clock, addresses, thread ids, unordered containers).";
  // Kept, so that finish() reports it even when the program caught the exception (a catch (...)
  // in a greenlet) or died of something else first.
  diverged_ = true;
  divergence_ = report;
  throw Divergence(report);
}

std::uint32_t ReplayChooser::choose(const ChoicePoint& point) {
  if (diverged_) return 0;  // let run() tear down after a divergence
  if (next_ >= schedule_.choices.size()) {
    diverge(std::string("the program asks for a ") + to_string(point.kind) + " choice among " +
                std::to_string(point.n) + " alternatives, but the schedule ended after " +
                std::to_string(schedule_.choices.size()) + " choices",
            nullptr);
  }
  const ChoiceRecord& expected = schedule_.choices[next_];
  if (point.kind != expected.kind || point.n != expected.n) {
    diverge(std::string("the program offers a ") + to_string(point.kind) + " choice among " +
                std::to_string(point.n) + " alternatives; the schedule expected a " +
                to_string(expected.kind) + " choice among " + std::to_string(expected.n),
            &expected);
  }
  if (point.kind != ChoiceKind::random) {
    if (point.key(expected.answer) != expected.chosen_key) {
      diverge("answer " + std::to_string(expected.answer) + " now runs " +
                  point.alternative(expected.answer).describe() + ", not what the schedule chose",
              &expected);
    }
    // The same greenlet, doing something else (a kill delivered where it was resumed, say).
    // Schedules of format version 1 and 2 do not know the action.
    const Action now = point.action(expected.answer);
    if (expected.action != Action::unknown && now != expected.action) {
      diverge("answer " + std::to_string(expected.answer) + " now does " + to_string(now) + " to " +
                  point.alternative(expected.answer).describe() + ", where the schedule's did " +
                  to_string(expected.action),
              &expected);
    }
  }
  return expected.answer;
}

void ReplayChooser::chosen(const ChoiceEvent& record, const ChoicePoint& point) {
  if (diverged_) return;
  const ChoiceRecord& expected = schedule_.choices[next_];
  if (record.hash != expected.hash) {
    ChoiceRecord now;
    static_cast<ChoiceEvent&>(now) = record;
    now.chosen_name = point.chosen(record.answer).describe();
    diverge("the same choice, but the run got here by another path (now " + describe_choice(now) +
                "; the steps or virtual time since the previous "
                "choice differ)",
            &expected);
  }
  replayed_.push_back(expected);  // equal to what just happened, hash for hash
  ++next_;
}

void ReplayChooser::finish() const {
  if (diverged_) throw Divergence(divergence_);
  if (next_ == schedule_.choices.size()) return;
  std::string report =
      "tendril: replay of " + schedule_.test + " diverged: the run ended after " +
      std::to_string(next_) + " of the schedule's " + std::to_string(schedule_.choices.size()) +
      " choices; the next recorded one was " + describe_choice(schedule_.choices[next_]);
  throw Divergence(report);
}

}  // namespace tendril
