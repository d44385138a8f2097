// SPDX-License-Identifier: Apache-2.0
// The failure path as a user meets it: a test binary that fails is run in a child process, and
// the commands it prints are pasted into a shell from another directory. Each failure is
// reported once, at the user's line; the replay fails the same way and leaves its files as they
// were. The fixtures are explore_fixture.cpp and props_fixture.cpp.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>

namespace {

struct Ran {
  std::string output;
  int status = -1;  // the exit status, or -1 if the child did not exit
};

// sh() runs a command line in /bin/sh with stdout and stderr together, as a terminal shows them.
Ran sh(const std::string& command) {
  Ran ran;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return ran;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) {
    ran.output.append(buffer, n);
  }
  const int status = ::pclose(pipe);
  if (WIFEXITED(status)) ran.status = WEXITSTATUS(status);
  return ran;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// line_after() is the rest of the first line that starts with `prefix`, or "".
std::string line_after(const std::string& text, const std::string& prefix) {
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = std::min(text.find('\n', at), text.size());
    const std::string line = text.substr(at, end - at);
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
    at = end + 1;
  }
  return "";
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

// counterexample() is the inputs RapidCheck printed for the last falsified case.
std::string counterexample(const std::string& text) {
  const std::size_t at = text.rfind("Falsifiable after");
  if (at == std::string::npos) return "";
  const std::size_t from = text.find("\n\n", at);
  const std::size_t to = text.find("\n\n/", from);
  if (from == std::string::npos || to == std::string::npos) return "";
  return text.substr(from + 2, to - from - 2);
}

// fixture_line() is the line of the fixture source that carries `marker`.
int fixture_line(const std::string& source, const std::string& marker) {
  const std::string text = read_file(source);
  const std::size_t at = text.find(marker);
  if (at == std::string::npos) return -1;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
}

// A fresh directory to run a fixture in, with a relative artifacts folder.
std::string fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("tendril-failure-path-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

const std::string explore_source = TENDRIL_EXPLORE_FIXTURE_SOURCE;

}  // namespace

// An exploration whose body fails a GoogleTest expectation: the expectation is reported once
// (the reruns that minimise and trace it are quiet), the exploration's failure points at the
// user's line, and both printed commands, pasted from / in a fresh shell, fail the same way and
// leave the saved files byte-identical.
TEST(FailurePath, ExploreReportsOnceAndItsCommandsReplay) {
  const std::string dir = fresh_dir("explore");
  const Ran run = sh("cd " + dir + " && env -u TENDRIL_REPLAY TENDRIL_ARTIFACTS=arts " +
                     TENDRIL_EXPLORE_FIXTURE + " --gtest_filter=Fixture.BankRaceExpect");
  ASSERT_EQ(run.status, 1) << run.output;
  const int expect_line = fixture_line(explore_source, "FIXTURE-EXPECT-LINE");
  const int explore_line = fixture_line(explore_source, "FIXTURE-EXPLORE-LINE");
  const std::string expect_at = "explore_fixture.cpp:" + std::to_string(expect_line) + ": Failure";
  const std::string explore_at =
      "explore_fixture.cpp:" + std::to_string(explore_line) + ": Failure";
  EXPECT_EQ(count(run.output, expect_at), 1u) << run.output;
  EXPECT_EQ(count(run.output, explore_at), 1u) << run.output;
  EXPECT_EQ(count(run.output, "explore_gtest.hpp"), 0u) << run.output;
  EXPECT_EQ(count(run.output, ": Failure"), 2u) << run.output;

  const std::string failure = line_after(run.output, "tendril: failure: ");
  EXPECT_EQ(failure, "tendril::ExpectationFailed: GoogleTest assertion failed: " + explore_source +
                         ":" + std::to_string(expect_line) +
                         ": Expected: (balance) >= (0), actual: -60 vs 0");
  const std::string schedule = line_after(run.output, "tendril: minimal schedule saved to ");
  const std::string found = line_after(run.output, "tendril: as found: ");
  ASSERT_TRUE(std::filesystem::path(schedule).is_absolute()) << run.output;
  ASSERT_TRUE(std::filesystem::exists(schedule)) << schedule;
  ASSERT_TRUE(std::filesystem::exists(found)) << found;
  EXPECT_EQ(schedule.rfind(dir + "/arts/Fixture_BankRaceExpect-random-", 0), 0u) << schedule;
  const std::string minimal_bytes = read_file(schedule), found_bytes = read_file(found);

  const std::string replay = line_after(run.output, "tendril: replay it with: ");
  const std::string seed = line_after(run.output, "tendril: or rerun seed ");
  ASSERT_NE(replay, "") << run.output;
  ASSERT_NE(seed, "") << run.output;
  const Ran again = sh("cd / && " + replay);
  EXPECT_EQ(again.status, 1) << again.output;
  EXPECT_EQ(line_after(again.output, "tendril: replayed ").rfind(schedule + " (", 0), 0u)
      << again.output;
  EXPECT_NE(again.output.find("failed: " + failure), std::string::npos) << again.output;
  EXPECT_EQ(count(again.output, expect_at), 1u) << again.output;
  EXPECT_EQ(read_file(schedule), minimal_bytes);
  EXPECT_EQ(read_file(found), found_bytes);

  // The drawing commands: the minimal run's flow graph, and it beside its passing neighbour.
  const std::string draw = line_after(run.output, "tendril: draw its flow graph with: ");
  const std::string draw_both = line_after(run.output, "tendril: draw both with: ");
  ASSERT_NE(draw, "") << run.output;
  ASSERT_NE(draw_both, "") << run.output;
  const Ran drawn = sh("cd / && " + draw);
  EXPECT_EQ(drawn.status, 0) << drawn.output;
  const std::string svg = draw.substr(draw.rfind(" -o ") + 4);
  EXPECT_NE(read_file(svg).find("<svg"), std::string::npos) << svg;
  const Ran both = sh("cd / && " + draw_both);
  EXPECT_EQ(both.status, 0) << both.output;
  EXPECT_NE(both.output.find("tendril-viz: the runs agree for "), std::string::npos) << both.output;
  const std::string diff_svg = draw_both.substr(draw_both.rfind(" -o ") + 4);
  EXPECT_NE(read_file(diff_svg).find("they part ways here"), std::string::npos) << diff_svg;

  // The seed form: "<n> with: <command>".
  const Ran by_seed = sh("cd / && " + seed.substr(seed.find(" with: ") + 7));
  EXPECT_EQ(by_seed.status, 1) << by_seed.output;
  EXPECT_EQ(line_after(by_seed.output, "tendril: failure: "), failure) << by_seed.output;
  EXPECT_EQ(line_after(by_seed.output, "tendril: minimal schedule saved to "), schedule);
  EXPECT_EQ(read_file(schedule), minimal_bytes);
  EXPECT_EQ(read_file(found), found_bytes);
}

// A sharded exploration: the failing shard's commands name that shard's test and replay it.
TEST(FailurePath, ShardedExplorationCommandsReplay) {
  const std::string dir = fresh_dir("sharded");
  const Ran run = sh("cd " + dir + " && env -u TENDRIL_REPLAY TENDRIL_ARTIFACTS=arts " +
                     TENDRIL_EXPLORE_FIXTURE + " --gtest_filter='Fixture.ShardedRace/*'");
  ASSERT_EQ(run.status, 1) << run.output;
  // The failure is reported at the TENDRIL_EXPLORE_TEST header: GCC's __LINE__ there is the
  // macro's first line, clang's the last line of the invocation (its options lambda spans lines).
#if defined(__clang__)
  const int line = fixture_line(explore_source, "FIXTURE-SHARDED-END");
#else
  const int line = fixture_line(explore_source, "FIXTURE-SHARDED-LINE");
#endif
  EXPECT_GE(count(run.output, "explore_fixture.cpp:" + std::to_string(line) + ": Failure"), 1u)
      << run.output;
  const std::string failure = line_after(run.output, "tendril: failure: ");
  const std::string seed = line_after(run.output, "tendril: or rerun seed ");
  const std::string replay = line_after(run.output, "tendril: replay it with: ");
  ASSERT_NE(seed, "") << run.output;
  const Ran by_seed = sh("cd / && " + seed.substr(seed.find(" with: ") + 7));
  EXPECT_EQ(line_after(by_seed.output, "tendril: failure: "), failure) << by_seed.output;
  const Ran again = sh("cd / && " + replay);
  EXPECT_NE(again.output.find("failed: " + failure), std::string::npos) << again.output;
}

// A RapidCheck property with an input besides its schedule (the number of greenlets): the
// printed replay command regenerates that input from the saved reproduction and replays the
// saved schedule, failing the same way; neither file changes.
TEST(FailurePath, PropertyReplayReproducesTheSameCase) {
  const std::string dir = fresh_dir("props");
  const Ran run = sh("cd " + dir + " && env -u TENDRIL_REPLAY TENDRIL_ARTIFACTS=arts " +
                     TENDRIL_PROPS_FIXTURE + " --gtest_filter=FixtureProps.LostUpdate");
  ASSERT_EQ(run.status, 1) << run.output;
  const std::string schedule = dir + "/arts/FixtureProps_LostUpdate.schedule";
  const std::string reproduction = dir + "/arts/FixtureProps_LostUpdate.rapidcheck";
  ASSERT_TRUE(std::filesystem::exists(schedule)) << run.output;
  ASSERT_TRUE(std::filesystem::exists(reproduction)) << run.output;
  const std::string schedule_bytes = read_file(schedule);
  const std::string reproduction_bytes = read_file(reproduction);
  EXPECT_EQ(reproduction_bytes.rfind("reproduce=", 0), 0u) << reproduction_bytes;
  // RapidCheck prints the minimal case's failure last; its replay line follows it.
  const std::size_t last = run.output.rfind("RC_ASSERT(counter == workers)");
  ASSERT_NE(last, std::string::npos) << run.output;
  const std::string replay = line_after(run.output.substr(last), "  replay: ");
  ASSERT_EQ(replay.rfind("cd " + dir + " && TENDRIL_REPLAY=" + schedule + " ", 0), 0u)
      << run.output;

  const Ran again = sh("cd / && " + replay);
  EXPECT_EQ(again.status, 1) << again.output;
  EXPECT_NE(counterexample(run.output), "");
  EXPECT_EQ(counterexample(again.output), counterexample(run.output)) << again.output;
  EXPECT_NE(again.output.find("replayed " + schedule), std::string::npos) << again.output;
  EXPECT_EQ(count(again.output, "Divergence"), 0u) << again.output;
  // The same counterexample: the same assertion with the same values.
  const std::regex values("RC_ASSERT\\(counter == workers\\)\n\nExpands to:\n([^\n]*)");
  std::smatch first, second;
  const std::string tail = run.output.substr(last);
  ASSERT_TRUE(std::regex_search(tail, first, values)) << run.output;
  ASSERT_TRUE(std::regex_search(again.output, second, values)) << again.output;
  EXPECT_EQ(first[1].str(), second[1].str());
  EXPECT_EQ(read_file(schedule), schedule_bytes);
  EXPECT_EQ(read_file(reproduction), reproduction_bytes);
}

// GoogleTest's shard variables inherited by a one-test process (as ctest runs them) cannot make
// it pass silently: the process fails and says why. A whole-binary shard run is left alone.
TEST(FailurePath, InheritedShardVariablesCannotPassSilently) {
  const Ran one = sh(std::string("GTEST_TOTAL_SHARDS=4 GTEST_SHARD_INDEX=1 ") +
                     TENDRIL_EXPLORE_FIXTURE + " --gtest_filter=Fixture.BankRaceExpect");
  EXPECT_EQ(one.status, 1) << one.output;
  EXPECT_NE(one.output.find("tendril: GTEST_TOTAL_SHARDS=4 and GTEST_SHARD_INDEX=1 send the 1 test "
                            "that --gtest_filter=Fixture.BankRaceExpect selects to other shards, "
                            "so this process would run nothing and pass."),
            std::string::npos)
      << one.output;
  const Ran none = sh(std::string("GTEST_TOTAL_SHARDS=40 GTEST_SHARD_INDEX=39 ") +
                      TENDRIL_EXPLORE_FIXTURE + " --gtest_filter=No.SuchTest");
  EXPECT_EQ(none.status, 0) << none.output;  // the filter matches nothing: nothing hidden
}

// A GoogleTest expectation failing in a spawned greenlet fails the exploration, reported once.
TEST(FailurePath, AnExpectationInAGreenletFailsTheExploration) {
  const std::string dir = fresh_dir("greenlet-expect");
  const Ran run = sh("cd " + dir + " && env -u TENDRIL_REPLAY " + TENDRIL_EXPLORE_FIXTURE +
                     " --gtest_filter=Fixture.ExpectInGreenlet");
  ASSERT_EQ(run.status, 1) << run.output;
  const int line = fixture_line(explore_source, "FIXTURE-GREENLET-EXPECT-LINE");
  EXPECT_EQ(count(run.output, "explore_fixture.cpp:" + std::to_string(line) + ": Failure"), 1u)
      << run.output;
  EXPECT_EQ(line_after(run.output, "tendril: failure: "),
            "tendril::ExpectationFailed: GoogleTest assertion failed: " + explore_source + ":" +
                std::to_string(line) + ": Expected equality of these values:")
      << run.output;
}
