// SPDX-License-Identifier: Apache-2.0
// schedule_fuzz.cpp: libFuzzer target for the schedule file parser (tendril::parse_schedule,
// trace/FORMAT.md). Any input must either parse or throw ScheduleError naming the source; a parsed
// schedule must survive format_schedule() and parse_schedule() unchanged. Anything else (another
// exception, a crash, a hang, a sanitizer report) is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "tendril/trace.hpp"

// LLVMFuzzerTestOneInput() runs one input through the schedule parser; libFuzzer and the corpus
// replay (replay_main.cpp) call it.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using tendril::fuzz::check;
  const std::string text(reinterpret_cast<const char*>(data), size);
  tendril::Schedule schedule;
  try {
    schedule = tendril::parse_schedule(text, "fuzz.schedule");
  } catch (const tendril::ScheduleError& e) {
    const std::string what = e.what();
    check(what.rfind("tendril: fuzz.schedule", 0) == 0,
          "error does not name the file: " + tendril::fuzz::printable(what));
    return 0;
  }
  // What this build accepts it must write back so that it reads the same schedule again: a
  // ScheduleError out of this second parse escapes and is a finding too.
  const std::string formatted = tendril::format_schedule(schedule);
  const tendril::Schedule again = tendril::parse_schedule(formatted, "round-trip");
  const std::string reformatted = tendril::format_schedule(again);
  check(reformatted == formatted, "format/parse round trip changed " +
                                      tendril::fuzz::first_difference(formatted, reformatted));
  check(again.test == schedule.test && again.policy == schedule.policy &&
            again.seed == schedule.seed && again.choices.size() == schedule.choices.size(),
        "round trip changed the schedule's identity");
  for (std::size_t i = 0; i < again.choices.size(); ++i) {
    check(again.choices[i].chosen_name == schedule.choices[i].chosen_name,
          "round trip changed choice " + std::to_string(i) + "'s name");
    // Replay reports render every choice.
    (void)tendril::describe_choice(again.choices[i]);
  }
  return 0;
}
