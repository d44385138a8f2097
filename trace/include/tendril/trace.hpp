// SPDX-License-Identifier: Apache-2.0
// tendril/trace.hpp: schedules (the recorded choice stream of a simulated run), their file
// format, recording, and replay with divergence detection. The file format is documented in
// trace/FORMAT.md.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tendril/sched.hpp"
#include "tendril/trace/events.hpp"
#include "tendril/trace/trace_file.hpp"
#include "tendril/trace/tracer.hpp"

namespace tendril {

// Schedule is every choice one simulated run made, with what identifies the run.
struct Schedule {
  // format_version is the version format_schedule() writes; parse_schedule() reads 1, 2 and 3.
  static constexpr int format_version = 3;
  std::string test;    // the test's identity, e.g. "Bank.Transfer"
  std::string policy;  // the policy that made the choices, e.g. "random(seed=7)"
  std::uint64_t seed = 0;
  std::vector<ChoiceRecord> choices;
  // final_hash() is the running hash after the last choice (the FNV-1a basis when none).
  std::uint64_t final_hash() const noexcept;
};

// ScheduleError reports a schedule file that cannot be used: its message names the file, the
// line and the field, and what was wrong.
class ScheduleError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// format_schedule() renders a schedule in the text format; parse_schedule() reads it back,
// validating everything (source names the text in errors). Throws ScheduleError.
std::string format_schedule(const Schedule& schedule);
Schedule parse_schedule(const std::string& text, const std::string& source);
// save_schedule() writes a schedule file (creating parent folders); load_schedule() reads one,
// which must be a regular file of at most max_schedule_file_bytes. Both throw ScheduleError
// naming the path on any failure.
inline constexpr std::uint64_t max_schedule_file_bytes = 1ULL << 30;
void save_schedule(const Schedule& schedule, const std::string& path);
Schedule load_schedule(const std::string& path);

// Divergence is thrown out of run() when a replay stops matching its schedule: the message gives
// the choice, what the schedule expected and what the program offered, and the last choices
// before it.
class Divergence : public HubError {
 public:
  using HubError::HubError;
};

// RecordingChooser answers with an inner policy and records every choice.
class RecordingChooser final : public Chooser {
 public:
  explicit RecordingChooser(std::unique_ptr<Chooser> inner);
  std::uint32_t choose(const ChoicePoint& point) override { return inner_->choose(point); }
  bool wants_records() const override { return true; }
  void chosen(const ChoiceEvent& record, const ChoicePoint& point) override;
  // The hub fills the log itself and asks the inner policy directly (no virtual call through
  // here per choice); over Fifo it records ready choices without building choice points at all.
  // An inner chooser that wants records itself (a ReplayChooser) gets them through chosen().
  ChoiceLog* inline_log() noexcept override { return inner_wants_records_ ? nullptr : &log_; }
  Chooser* policy() noexcept override { return inner_->policy(); }
  std::string describe() const override { return inner_->describe(); }
  // records() are the choices so far; schedule() packages them, named, with the run's identity.
  const std::vector<ChoiceEvent>& records() const noexcept { return log_.events(); }
  Schedule schedule(std::string test, std::uint64_t seed) const;

 private:
  std::unique_ptr<Chooser> inner_;
  bool inner_wants_records_ = false;
  ChoiceLog log_;
};

// ReplayChooser answers from a schedule and checks, at each choice, that the program offers what
// was recorded: the same kind and number of alternatives, the same chosen greenlet or object, and
// the same running hash. The first difference throws Divergence; after it every answer is 0, so
// the run can be torn down. finish() checks that every recorded choice was used, and throws the
// first Divergence again if there was one (the program may have caught it where it was thrown).
class ReplayChooser final : public Chooser {
 public:
  explicit ReplayChooser(Schedule schedule);
  std::uint32_t choose(const ChoicePoint& point) override;
  bool wants_records() const override { return true; }
  void chosen(const ChoiceEvent& record, const ChoicePoint& point) override;
  std::string describe() const override { return "replay of " + schedule_.policy; }
  // finish() throws Divergence if the replay diverged (the first one, again) or if the run ended
  // before using every recorded choice; call it after the run.
  void finish() const;
  // replayed() are the choices made so far in this replay (equal to the schedule's on success).
  const std::vector<ChoiceRecord>& replayed() const noexcept { return replayed_; }
  bool diverged() const noexcept { return diverged_; }
  // divergence() is the first Divergence's message, empty if none.
  const std::string& divergence() const noexcept { return divergence_; }

 private:
  [[noreturn]] void diverge(const std::string& what, const ChoiceRecord* expected);
  Schedule schedule_;
  std::size_t next_ = 0;
  std::vector<ChoiceRecord> replayed_;
  bool diverged_ = false;
  std::string divergence_;
};

// describe_choice() renders one record as a line for reports: "#12 step 340 t=0.002000000s ready
// 2 of 3 -> #4 'worker'".
std::string describe_choice(const ChoiceRecord& record);

}  // namespace tendril
