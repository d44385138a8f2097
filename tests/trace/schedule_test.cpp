// SPDX-License-Identifier: Apache-2.0
// Schedule files (format, validation with line/field errors), recording, and replay with
// divergence detection.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

using namespace std::chrono_literals;
using tendril::Ref;
using tendril::Schedule;
using tendril::ScheduleError;
using tendril::SimHub;

namespace {

// A small program with real choices: three workers interleaving sleep(0)s and random sleeps.
void program(int workers, std::vector<std::string>* log) {
  std::vector<Ref<tendril::Greenlet>> gs;
  for (int i = 0; i < workers; ++i) {
    gs.push_back(tendril::spawn("w" + std::to_string(i), [i, log] {
      for (int k = 0; k < 3; ++k) {
        tendril::sleep(std::chrono::milliseconds(tendril::random_below(3)));
        if (log) log->push_back(std::to_string(i) + "." + std::to_string(k));
      }
    }));
  }
  tendril::joinall(gs);
}

Schedule record(std::uint64_t seed, int workers = 3, std::vector<std::string>* log = nullptr) {
  auto recorder =
      std::make_unique<tendril::RecordingChooser>(std::make_unique<tendril::Random>(seed));
  auto* rec = recorder.get();
  SimHub hub(std::move(recorder));
  tendril::run(hub, [&] { program(workers, log); });
  return rec->schedule("Trace.Program", seed);
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ScheduleError& e) {
    return e.what();
  } catch (const tendril::Divergence& e) {
    return e.what();
  }
  return "no error";
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

}  // namespace

// A recorded schedule survives format -> parse unchanged, field for field.
TEST(Schedule, FormatParseRoundTrip) {
  const Schedule s = record(7);
  ASSERT_GT(s.choices.size(), 5u);
  const Schedule back = tendril::parse_schedule(tendril::format_schedule(s), "mem");
  EXPECT_EQ(back.test, "Trace.Program");
  EXPECT_EQ(back.policy, "random(seed=7)");
  EXPECT_EQ(back.seed, 7u);
  ASSERT_EQ(back.choices.size(), s.choices.size());
  for (std::size_t i = 0; i < s.choices.size(); ++i) {
    EXPECT_EQ(back.choices[i].answer, s.choices[i].answer);
    EXPECT_EQ(back.choices[i].n, s.choices[i].n);
    EXPECT_EQ(back.choices[i].hash, s.choices[i].hash);
    EXPECT_EQ(back.choices[i].chosen_name, s.choices[i].chosen_name);
  }
  EXPECT_EQ(tendril::format_schedule(back), tendril::format_schedule(s));
}

// Names starting with whitespace survive format -> parse: the writer escapes it ("\\ "), since
// the reader skips the blank after a key (found by tests/fuzz/schedule_fuzz.cpp).
TEST(Schedule, LeadingWhitespaceInNamesRoundTrips) {
  Schedule s = record(7);
  ASSERT_FALSE(s.choices.empty());
  s.test = " ";
  s.policy = "\tfifo";
  s.choices[0].chosen_name = " #2 'w'";
  const std::string text = tendril::format_schedule(s);
  EXPECT_NE(text.find("\ntest \\ \n"), std::string::npos) << text;
  EXPECT_NE(text.find("\npolicy \\\tfifo\n"), std::string::npos) << text;
  const Schedule back = tendril::parse_schedule(text, "mem");
  EXPECT_EQ(back.test, " ");
  EXPECT_EQ(back.policy, "\tfifo");
  EXPECT_EQ(back.choices[0].chosen_name, " #2 'w'");
  EXPECT_EQ(tendril::format_schedule(back), text);
  // Unescaped, as this library wrote it before: the test's name is lost to the separator.
  std::string old_text = text;
  old_text.replace(old_text.find("test \\ "), 7, "test  ");
  try {
    tendril::parse_schedule(old_text, "mem");
    FAIL() << "parsed a schedule whose test name is blank";
  } catch (const ScheduleError& e) {
    EXPECT_STREQ(e.what(), "tendril: mem:3: field 'test' is empty");
  }
}

// The same seed gives the same schedule, choice for choice, run after run.
TEST(Schedule, SameSeedSameSchedule) {
  EXPECT_EQ(tendril::format_schedule(record(11)), tendril::format_schedule(record(11)));
  EXPECT_NE(tendril::format_schedule(record(11)), tendril::format_schedule(record(12)));
}

// Every kind of bad file gets an error naming the file, the line and the field.
TEST(Schedule, BadFilesGetClearErrors) {
  const std::string good = tendril::format_schedule(record(3));
  auto parse = [](const std::string& text) {
    return error_of([&] { tendril::parse_schedule(text, "x.schedule"); });
  };
  EXPECT_EQ(parse(""),
            "tendril: x.schedule: the file is empty; expected the first line 'tendril-schedule 3'");
  EXPECT_NE(parse("hello world\n").find("x.schedule:1: not a tendril schedule file"),
            std::string::npos);
  EXPECT_EQ(parse(replace(good, "tendril-schedule 3", "tendril-schedule 4")),
            "tendril: x.schedule:1: unsupported schedule format version '4' (this build reads "
            "versions 1, 2 and 3)");
  EXPECT_EQ(parse(replace(good, "tendril-schedule 3", "tendril-schedule 3 x")),
            "tendril: x.schedule:1: unsupported schedule format version '3 x' (this build reads "
            "versions 1, 2 and 3)");
  const std::string truncated = good.substr(0, good.rfind("end "));
  EXPECT_NE(parse(truncated).find("truncated: no 'end' line"), std::string::npos)
      << parse(truncated);
  const std::string cut_mid = good.substr(0, good.size() / 2);
  EXPECT_NE(parse(cut_mid).find("x.schedule"), std::string::npos);
  EXPECT_NE(parse(replace(good, "seed 3", "seed three"))
                .find("field 'seed' must be a non-negative integer, got 'three'"),
            std::string::npos);
  EXPECT_NE(parse(replace(good, "\nseed 3\n", "\n")).find("missing field 'seed'"),
            std::string::npos);
  EXPECT_NE(parse(replace(good, "policy ", "polcy ")).find(":4: unknown field 'polcy'"),
            std::string::npos)
      << parse(replace(good, "policy ", "polcy "));
  // Flip one answer: the hash chain catches it on that very line.
  const Schedule s = tendril::parse_schedule(good, "x");
  const auto& c0 = s.choices.front();
  const std::string line0 = "c 0 " + std::to_string(c0.step) + " " + std::to_string(c0.time_ns) +
                            " " + tendril::to_string(c0.kind) + " " + std::to_string(c0.n) + " " +
                            std::to_string(c0.answer) + " ";
  const std::string flipped = "c 0 " + std::to_string(c0.step) + " " + std::to_string(c0.time_ns) +
                              " " + tendril::to_string(c0.kind) + " " + std::to_string(c0.n) + " " +
                              std::to_string((c0.answer + 1) % c0.n) + " ";
  ASSERT_NE(good.find(line0), std::string::npos);
  EXPECT_NE(parse(replace(good, line0, flipped)).find(":8: field 'hash' does not match"),
            std::string::npos)
      << parse(replace(good, line0, flipped));
  const std::string too_big = "c 0 " + std::to_string(c0.step) + " " + std::to_string(c0.time_ns) +
                              " " + tendril::to_string(c0.kind) + " " + std::to_string(c0.n) + " " +
                              std::to_string(c0.n) + " ";
  EXPECT_NE(parse(replace(good, line0, too_big)).find("field 'answer' is"), std::string::npos);
  EXPECT_NE(parse(replace(good, "c 1 ", "c 5 ")).find("choice index 5 out of order (expected 1)"),
            std::string::npos);
  EXPECT_NE(parse(good + "c 99\n").find("content after the 'end' line"), std::string::npos);
  // The 'end' line's file hash covers the header lines and the names: editing the test's name,
  // the policy or a choice's name is caught (format version 2).
  const std::size_t end_line = static_cast<std::size_t>(std::count(good.begin(), good.end(), '\n'));
  const std::string file_hash_error =
      "tendril: x.schedule:" + std::to_string(end_line) +
      ": the 'end' line's file hash does not match the file's lines (a header line or a name was "
      "edited, or the file is corrupted)";
  EXPECT_EQ(parse(replace(good, "test Trace.Program", "test Trace.Other")), file_hash_error);
  EXPECT_EQ(parse(replace(good, "policy random(seed=3)", "policy pct(seed=3)")), file_hash_error);
  EXPECT_EQ(parse(replace(good, "'w1'", "'w9'")), file_hash_error);
  // Comments and blank lines are not covered: a note added by hand keeps the file valid.
  EXPECT_EQ(parse(replace(good, "choices ", "# found in CI run 12\n\nchoices ")), "no error");
  const std::string end_fields = good.substr(good.rfind("end "));
  EXPECT_EQ(parse(replace(good, end_fields, end_fields.substr(0, end_fields.size() - 1) + " x\n")),
            "tendril: x.schedule:" + std::to_string(end_line) +
                ": unexpected field 'x' after the 'end' hash");
  EXPECT_EQ(
      parse(replace(good, end_fields, end_fields.substr(0, end_fields.rfind(' ')) + "\n")),
      "tendril: x.schedule:" + std::to_string(end_line) + ": field 'end file hash' is missing");
  EXPECT_NE(error_of([] {
              tendril::load_schedule("/nonexistent/dir/none.schedule");
            }).find("cannot read schedule file /nonexistent/dir/none.schedule"),
            std::string::npos);
}

// Format version 3 says what each answer did: a greenlet's start, its resumption after sleep(0),
// the wakeup of a wait, a kill delivered, a death notification. Each is read back, a bad one is
// refused with the line and the field, and a replay in which the same greenlet is offered doing
// something else diverges, naming both.
TEST(Schedule, RecordsSayWhatEachAnswerDid) {
  // 'spinner' and 'other' keep two entries in the ready queue, so that every step is a choice;
  // spinner's second sleep ends at 2 ms, as the Timeout of 'timed' fires: a timer choice.
  const auto body = [] {
    tendril::Event ev;
    auto spinner = tendril::spawn("spinner", [] {
      for (int i = 0; i < 12; ++i) tendril::sleep(std::chrono::seconds(0));
      for (int i = 0; i < 3; ++i) tendril::sleep(std::chrono::milliseconds(1));
    });
    auto other = tendril::spawn("other", [] {
      for (int i = 0; i < 12; ++i) tendril::sleep(std::chrono::seconds(0));
      for (int i = 0; i < 3; ++i) tendril::sleep(std::chrono::milliseconds(1));
    });
    auto sleeper = tendril::spawn("sleeper", [] { tendril::sleep(std::chrono::hours(1)); });
    auto waiter = tendril::spawn("waiter", [&ev] { ev.wait(); });
    auto timed = tendril::spawn("timed", [] {
      tendril::TimeoutScope t(std::chrono::milliseconds(2));
      try {
        tendril::Event never;
        never.wait();
      } catch (const tendril::Timeout&) {
      }
    });
    tendril::sleep(std::chrono::seconds(0));
    ev.set();
    sleeper->kill_nowait();
    sleeper->join();
    tendril::joinall({spinner, other, sleeper, waiter, timed});
  };
  auto recorder = std::make_unique<tendril::RecordingChooser>(std::make_unique<tendril::Fifo>());
  auto* rec = recorder.get();
  SimHub hub(std::move(recorder));
  tendril::run(hub, body);
  const Schedule s = rec->schedule("Schedule.Actions", 0);
  std::string seen;  // what the others did, in order (the two spinners mostly yield)
  for (const auto& c : s.choices) {
    if (c.action == tendril::Action::yield &&
        (c.chosen_name == "#2 'spinner'" || c.chosen_name == "#3 'other'")) {
      continue;
    }
    seen += std::string(tendril::to_string(c.action)) + " " + c.chosen_name + "\n";
  }
  EXPECT_EQ(seen,
            "start #2 'spinner'\n"
            "start #3 'other'\n"
            "start #4 'sleeper'\n"
            "start #5 'waiter'\n"
            "start #6 'timed'\n"
            "yield #1 'main'\n"
            "notify Event#1\n"
            "kill #4 'sleeper'\n"
            "links #4 'sleeper'\n"
            "timer #2 'spinner'\n"
            "timer #2 'spinner'\n"
            "timer #2 'spinner'\n")
      << tendril::format_schedule(s);
  const std::string text = tendril::format_schedule(s);
  EXPECT_NE(text.find("\nc 9 10 0 ready 3 0 4 kill "), std::string::npos) << text;
  const Schedule back = tendril::parse_schedule(text, "x.schedule");
  ASSERT_EQ(back.choices.size(), s.choices.size());
  for (std::size_t i = 0; i < s.choices.size(); ++i) {
    EXPECT_EQ(back.choices[i].action, s.choices[i].action) << i;
  }
  const std::string described = tendril::describe_choice(back.choices[9]);
  EXPECT_EQ(described.substr(described.find(" -> ")), " -> #4 'sleeper' (kill)");

  // Bad actions: unknown words, and draw where no draw happened.
  const std::size_t kill_from = text.find("\nc 9 ") + 1;
  const std::string kill_line = text.substr(kill_from, text.find('\n', kill_from) - kill_from);
  const std::size_t kill_at = kill_line.find(" kill ");
  ASSERT_NE(kill_at, std::string::npos) << kill_line;
  auto with = [&](const std::string& action) {
    std::string line = kill_line;
    line.replace(kill_at + 1, 4, action);
    return error_of([&] { tendril::parse_schedule(replace(text, kill_line, line), "x.schedule"); });
  };
  EXPECT_EQ(with("kills"),
            "tendril: x.schedule:17: field 'action' must be start, yield, wake, timer, kill, "
            "timeout, links, notify, call, draw or ?, got 'kills'");
  EXPECT_EQ(with("draw"),
            "tendril: x.schedule:17: field 'action' is draw, but only a random choice draws");

  // A replay in which answer 0 resumes the same greenlet the schedule's killed: diverges.
  Schedule edited = s;
  edited.choices[5].action = tendril::Action::kill;  // #1 'main' resumed after sleep(0)
  auto replayer = std::make_unique<tendril::ReplayChooser>(edited);
  SimHub replay_hub(std::move(replayer));
  const std::string why = error_of([&] { tendril::run(replay_hub, body); });
  EXPECT_EQ(why.substr(0, why.find('\n')),
            "tendril: replay of Schedule.Actions diverged at choice #5: answer 0 now does yield "
            "to #1 'main', where the schedule's did kill")
      << why;
  EXPECT_NE(why.find("the schedule recorded: #5 step 6 t=0.000000000s ready 0 of 3 -> #1 'main' "
                     "(kill)"),
            std::string::npos)
      << why;
}

// Replaying a recorded schedule reproduces the run bit for bit: the same output and the same
// choices, hash for hash.
TEST(Replay, UnchangedProgramReplaysBitIdentically) {
  std::vector<std::string> original, replayed;
  const Schedule s = record(5, 3, &original);
  auto replayer = std::make_unique<tendril::ReplayChooser>(s);
  auto* r = replayer.get();
  SimHub hub(std::move(replayer));
  tendril::run(hub, [&] { program(3, &replayed); });
  r->finish();
  EXPECT_EQ(replayed, original);
  ASSERT_EQ(r->replayed().size(), s.choices.size());
  for (std::size_t i = 0; i < s.choices.size(); ++i) {
    EXPECT_EQ(r->replayed()[i].hash, s.choices[i].hash);
  }
  EXPECT_EQ(hub.schedule_hash(), s.final_hash());
}

// A changed program (one more worker) stops at the first real difference with a report.
TEST(Replay, ChangedProgramDivergesWithReport) {
  const Schedule s = record(5, 3);
  SimHub hub(std::make_unique<tendril::ReplayChooser>(s));
  const std::string report = error_of([&] { tendril::run(hub, [&] { program(4, nullptr); }); });
  EXPECT_NE(report.find("tendril: replay of Trace.Program diverged at choice #"), std::string::npos)
      << report;
  EXPECT_NE(report.find("the schedule recorded: #"), std::string::npos) << report;
  EXPECT_NE(report.find("The program changed"), std::string::npos) << report;
  EXPECT_EQ(hub.live_greenlets(), 0u);  // torn down cleanly after the divergence
}

// A run that ends early (fewer choices than recorded) is a divergence too.
TEST(Replay, RunEndingEarlyIsDivergence) {
  const Schedule s = record(5, 3);
  auto replayer = std::make_unique<tendril::ReplayChooser>(s);
  auto* r = replayer.get();
  SimHub hub(std::move(replayer));
  const std::string report = error_of([&] {
    tendril::run(hub, [] {});  // makes no choice at all
    r->finish();
  });
  EXPECT_NE(report.find("diverged: the run ended after 0 of the schedule's"), std::string::npos)
      << report;
}

// save/load go through real files; names with spaces and newlines survive.
TEST(Schedule, SaveAndLoadFiles) {
  Schedule s = record(9);
  s.test = "Suite.Name with spaces\nand a newline";
  const auto dir = std::filesystem::temp_directory_path() / "tendril-schedule-test";
  const std::string path = (dir / "sub" / "s.schedule").string();
  tendril::save_schedule(s, path);
  const Schedule back = tendril::load_schedule(path);
  EXPECT_EQ(back.test, s.test);
  EXPECT_EQ(back.choices.size(), s.choices.size());
  std::filesystem::remove_all(dir);
}

// Determinism across builds: tests/trace/fixtures/program-seed5.v3.schedule was recorded by an
// optimised build; this build (optimised, Debug+ASan, any machine) must record the same schedule
// byte for byte, and replay the committed one. program-seed5.schedule is the same run recorded
// in format version 1, kept to show that old files are still read and replayed: its choices are
// the same except that version 1 does not say what each answer did (rewrite the version 3 file
// with TENDRIL_UPDATE_FIXTURES=1, only if the recorded choices change).
TEST(Replay, CommittedScheduleIsReproducedByThisBuild) {
  const std::string dir = TENDRIL_TEST_FIXTURES;
  const Schedule now = record(5, 3);
  if (const char* update = std::getenv("TENDRIL_UPDATE_FIXTURES"); update && *update == '1') {
    tendril::save_schedule(now, dir + "/program-seed5.v3.schedule");
  }
  const Schedule committed = tendril::load_schedule(dir + "/program-seed5.v3.schedule");
  EXPECT_EQ(tendril::format_schedule(now), tendril::format_schedule(committed));
  Schedule without_actions = now;
  for (auto& c : without_actions.choices) c.action = tendril::Action::unknown;
  const Schedule v1 = tendril::load_schedule(dir + "/program-seed5.schedule");
  EXPECT_EQ(tendril::format_schedule(v1), tendril::format_schedule(without_actions));
  for (const Schedule* s : {&committed, &v1}) {
    auto replayer = std::make_unique<tendril::ReplayChooser>(*s);
    auto* r = replayer.get();
    SimHub hub(std::move(replayer));
    tendril::run(hub, [&] { program(3, nullptr); });
    r->finish();
    EXPECT_EQ(hub.schedule_hash(), s->final_hash());
  }
}

namespace {

// Answers 0 like Fifo but does not say so, so the hub takes the choice-point path (choose() per
// choice, then records into the recorder's log) instead of Fifo's inline one.
class ZeroButNotFifo final : public tendril::Chooser {
 public:
  std::uint32_t choose(const tendril::ChoicePoint&) override { return 0; }
  std::string describe() const override { return "fifo"; }
};

// Answers 0 and collects the records through chosen(), the path of choosers that lend no log.
class ChosenCollector final : public tendril::Chooser {
 public:
  std::uint32_t choose(const tendril::ChoicePoint&) override { return 0; }
  bool wants_records() const override { return true; }
  void chosen(const tendril::ChoiceEvent& record, const tendril::ChoicePoint& point) override {
    tendril::ChoiceRecord r;
    static_cast<tendril::ChoiceEvent&>(r) = record;
    r.chosen_name = point.chosen(record.answer).describe();
    records.push_back(r);
  }
  std::vector<tendril::ChoiceRecord> records;
};

void fifo_program() {
  // Ready choices among greenlets (named and not) and a queue's unlock callback, timer choices
  // (two sleeps ending together), random draws.
  tendril::Queue<int> q(0, "inbox");
  auto consumer = tendril::spawn("consumer", [&] {
    for (int i = 0; i < 4; ++i) q.get();
  });
  std::vector<Ref<tendril::Greenlet>> gs;
  for (int i = 0; i < 3; ++i) {
    gs.push_back(tendril::spawn(i == 1 ? std::string() : "p" + std::to_string(i), [&q, i] {
      tendril::sleep(1ms);
      q.put(i + static_cast<int>(tendril::random_below(5)));
      tendril::sleep(0s);
    }));
  }
  q.put(9);
  tendril::joinall(gs);
  consumer->join();
}

std::string fifo_schedule(std::unique_ptr<tendril::Chooser> inner, std::uint64_t* hash) {
  auto recorder = std::make_unique<tendril::RecordingChooser>(std::move(inner));
  auto* rec = recorder.get();
  SimHub hub(std::move(recorder));
  tendril::run(hub, fifo_program);
  *hash = hub.schedule_hash();
  return tendril::format_schedule(rec->schedule("Trace.Fifo", 0));
}

}  // namespace

// A recorder lends the hub its log. Over Fifo the hub records ready choices inline (no choice
// point per choice), over another policy through choice points; a chooser that lends no log gets
// every record through chosen(). All three must give the same records, byte for byte.
TEST(Schedule, InlineLogAndChosenPathsRecordTheSameChoices) {
  std::uint64_t inline_hash = 0, point_hash = 0;
  const std::string inline_path = fifo_schedule(std::make_unique<tendril::Fifo>(), &inline_hash);
  const std::string point_path = fifo_schedule(std::make_unique<ZeroButNotFifo>(), &point_hash);
  EXPECT_EQ(inline_path, point_path);
  EXPECT_EQ(inline_hash, point_hash);
  // It has every kind of choice and every kind of name.
  for (const char* part : {" ready ", " timer ", " random ", "'consumer'", "'p0'", "Queue#"}) {
    EXPECT_NE(inline_path.find(part), std::string::npos) << part << " in\n" << inline_path;
  }

  auto collector = std::make_unique<ChosenCollector>();
  auto* c = collector.get();
  SimHub hub(std::move(collector));
  tendril::run(hub, fifo_program);
  EXPECT_EQ(hub.schedule_hash(), inline_hash);
  Schedule collected;
  collected.test = "Trace.Fifo";
  collected.policy = "fifo";
  collected.choices = c->records;
  EXPECT_EQ(tendril::format_schedule(collected), inline_path);
}
