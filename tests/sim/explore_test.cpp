// SPDX-License-Identifier: Apache-2.0
// Exploration of schedules: policies find the bank race (Fifo never does), failing schedules are
// saved and replay, deadlocks and livelocks are failures with a schedule, sharding splits seeds.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "seeds.hpp"
#include "tendril/explore_gtest.hpp"

using namespace std::chrono_literals;

namespace {

std::string artifacts() {
  return (std::filesystem::temp_directory_path() / "tendril-explore-test").string();
}

tendril::ExploreOptions options(const char* policy, std::uint64_t schedules = 1000) {
  tendril::ExploreOptions o;
  o.test = "Explore.BankRace";
  o.policy = policy;
  o.schedules = schedules;
  o.pct_depth = 2;
  o.artifacts = artifacts();
  return o;
}

// The bank race made correct: the check and the withdrawal hold one lock.
void locked_transfers() {
  tendril::Lock lock;
  int balance = 100;
  auto withdraw = [&](int amount) {
    std::lock_guard<tendril::Lock> guard(lock);
    if (balance >= amount) {
      tendril::sleep(0s);
      balance -= amount;
    }
  };
  tendril::joinall({tendril::spawn(withdraw, 80), tendril::spawn(withdraw, 80)});
  EXPECT_EQ(balance, 20);
}

}  // namespace

// Fifo (gevent's order) never breaks the race; Random does; PCT does in fewer schedules; the
// saved schedule replays the same failure.
TEST(Explore, PoliciesFindTheBankRaceAndItReplays) {
  const auto fifo = tendril::explore(options("fifo"), seeds::bank_race);
  EXPECT_TRUE(fifo.ok());
  EXPECT_EQ(fifo.schedules_run, 1u);
  const auto random = tendril::explore(options("random"), seeds::bank_race);
  ASSERT_FALSE(random.ok());
  EXPECT_EQ(random.failure, "std::logic_error: overdraft: balance is -60");
  const auto pct = tendril::explore(options("pct"), seeds::bank_race);
  ASSERT_FALSE(pct.ok());
  EXPECT_LT(pct.schedules_run, random.schedules_run);
  EXPECT_NE(pct.summary.find("probability >="), std::string::npos) << pct.summary;
  auto replay = options("random");
  replay.replay = random.schedule_file;
  const auto again = tendril::explore(replay, seeds::bank_race);
  EXPECT_EQ(again.failure, random.failure);
  EXPECT_NE(random.replay_command.find("TENDRIL_REPLAY=" + random.schedule_file),
            std::string::npos);
}

// The failing schedule is replayed once more under a tracer: its flow trace lands beside the
// schedule file. With no renderer installed (viz not linked) the summary says how to draw it.
TEST(Explore, AFailureLeavesItsFlowTraceBesideTheSchedule) {
  auto o = options("random");
  o.test = "Explore.FlowTrace";  // its own files: ctest runs the other explorations in parallel
  const auto random = tendril::explore(o, seeds::bank_race);
  ASSERT_FALSE(random.ok());
  const std::string base = random.schedule_file.substr(0, random.schedule_file.size() - 9);
  EXPECT_EQ(random.trace_file, base + ".trace");
  EXPECT_EQ(random.flow_file, "");
  const tendril::trace::Trace trace = tendril::trace::load_trace(random.trace_file);
  EXPECT_EQ(trace.test, "Explore.FlowTrace");
  ASSERT_FALSE(trace.events.empty());
  EXPECT_EQ(trace.events[trace.events.size() - 2].reason,
            "std::logic_error: overdraft: balance is -60");  // main's exit, then its switch
  // The command names this build's tendril-viz by its absolute path (or "tendril-viz" on PATH).
  const std::string line = "tendril-viz " + random.trace_file + " -o " + base + ".svg\n";
  const std::size_t at = random.summary.find("tendril: draw its flow graph with: /");
  ASSERT_NE(at, std::string::npos) << random.summary;
  EXPECT_EQ(random.summary.find(line, at), random.summary.find('\n', at) + 1 - line.size())
      << random.summary;
}

// The delay-bounded DFS explores every schedule within its bound, then stops; raising the bound
// finds more schedules.
TEST(Explore, DfsEnumeratesWithinTheBound) {
  auto body = [] {
    auto a = tendril::spawn([] { tendril::sleep(0s); });
    auto b = tendril::spawn([] { tendril::sleep(0s); });
    tendril::joinall({a, b});
  };
  auto o = options("dfs", 100000);
  o.test = "Explore.Dfs";
  o.dfs_bound = 0;
  const auto zero = tendril::explore(o, body);
  EXPECT_EQ(zero.schedules_run, 1u);
  o.dfs_bound = 1;
  const auto one = tendril::explore(o, body);
  o.dfs_bound = 2;
  const auto two = tendril::explore(o, body);
  EXPECT_GT(one.schedules_run, 1u);
  EXPECT_GT(two.schedules_run, one.schedules_run);
  EXPECT_EQ(two.distinct, two.schedules_run);  // each schedule is a different interleaving
  EXPECT_TRUE(two.ok());
}

// A failing schedule's file name says what made it: DFS's bound (so that runs at other bounds do
// not overwrite it), PCT's depth, and the seed or run index.
TEST(Explore, ScheduleFileNamesSayWhatMadeThem) {
  auto o = options("dfs", 100000);
  o.test = "Explore.Names";
  o.dfs_bound = 2;
  const auto dfs = tendril::explore(o, [] {
    std::vector<int> order;
    auto a = tendril::spawn([&] { order.push_back(1); });
    auto b = tendril::spawn([&] { order.push_back(2); });
    tendril::joinall({a, b});
    if (order.front() == 2) throw std::logic_error("b ran first");
  });
  ASSERT_FALSE(dfs.ok());
  EXPECT_EQ(dfs.failure, "std::logic_error: b ran first");
  const std::string dfs_name = std::filesystem::path(dfs.found_file).filename().string();
  EXPECT_EQ(dfs_name.rfind("Explore_Names-dfs-bound2-", 0), 0u) << dfs_name;
  auto p = options("pct");
  p.test = "Explore.Names";
  const auto pct = tendril::explore(p, seeds::bank_race);
  ASSERT_FALSE(pct.ok());
  const std::string pct_name = std::filesystem::path(pct.found_file).filename().string();
  EXPECT_TRUE(std::regex_match(pct_name, std::regex(R"(Explore_Names-pct-d2-[0-9]+\.schedule)")))
      << pct_name;
}

// A schedule that deadlocks is a failure with the Deadlock report and a saved schedule.
TEST(Explore, DeadlockIsAFailureWithSchedule) {
  auto o = options("random", 50);
  o.test = "Explore.Deadlock";
  const auto r = tendril::explore(o, [] {
    tendril::Lock l1("l1"), l2("l2");
    auto a = tendril::spawn([&] {
      std::lock_guard<tendril::Lock> g1(l1);
      tendril::sleep(0s);
      std::lock_guard<tendril::Lock> g2(l2);
    });
    auto b = tendril::spawn([&] {
      std::lock_guard<tendril::Lock> g2(l2);
      tendril::sleep(0s);
      std::lock_guard<tendril::Lock> g1(l1);
    });
    tendril::joinall({a, b});
  });
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.failure.find("tendril::Deadlock: tendril: deadlock at"), std::string::npos)
      << r.failure;
  EXPECT_TRUE(std::filesystem::exists(r.schedule_file));
}

// A livelock is stopped by the step limit and saved like any failure.
TEST(Explore, LivelockHitsStepLimitAndIsSaved) {
  auto o = options("random", 5);
  o.test = "Explore.Livelock";
  o.sim.max_steps = 5000;
  const auto r = tendril::explore(o, [] {
    auto spinner = tendril::spawn([] {
      for (;;) tendril::sleep(0s);
    });
    spinner->join();
  });
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.failure.find("step limit of 5000 reached"), std::string::npos) << r.failure;
  EXPECT_TRUE(std::filesystem::exists(r.schedule_file));
}

// A two-greenlet spin under explore() with every option at its default is reported as a
// Livelock at the first schedule, saved, not traced (its run is over trace_max_steps), and the
// whole exploration stays under 100 MB (measured in a child process: its peak resident size).
TEST(Explore, LivelockWithDefaultOptionsIsReportedInBoundedMemory) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    tendril::ExploreOptions o;
    o.test = "Explore.DefaultLivelock";
    o.artifacts = artifacts();
    o.read_replay_env = false;
    o.progress = "off";
    const auto r = tendril::explore(o, seeds::two_spinners);
    const bool as_expected =
        !r.ok() && r.schedules_run == 1 &&
        r.failure.rfind(
            "tendril::Livelock: tendril::SimHub: livelock at virtual time "
            "0.000000000 s, step 100004, ",
            0) == 0 &&
        r.failure.find("spinning: #2 'a', #3 'b' (SimOptions::livelock_steps") !=
            std::string::npos &&
        std::filesystem::exists(r.schedule_file) && r.trace_file.empty() &&
        r.summary.find(
            "tendril: no trace written: the failing run took 100010 steps, more than "
            "ExploreOptions::trace_max_steps (50000); the schedule replays it") !=
            std::string::npos;
    if (!as_expected) {
      std::fprintf(stderr, "runs %llu, trace [%s], schedule [%s]\nfailure: %s\nsummary: %s\n",
                   static_cast<unsigned long long>(r.schedules_run), r.trace_file.c_str(),
                   r.schedule_file.c_str(), r.failure.c_str(), r.summary.c_str());
    }
    std::_Exit(as_expected ? 0 : 1);
  }
  int status = 0;
  rusage usage{};
  ASSERT_EQ(::wait4(child, &status, 0, &usage), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's report is on stderr above";
#if !defined(TENDRIL_ASAN)  // ASan's shadow memory and quarantine inflate the peak
  EXPECT_LT(usage.ru_maxrss, 100 * 1024) << "peak resident size in KiB";
#endif
}

// Replaying a missing file, or a schedule of another test, is a clear error.
TEST(Explore, BadReplayFiles) {
  auto o = options("random");
  o.replay = "/nonexistent/x.schedule";
  EXPECT_THROW(tendril::explore(o, seeds::bank_race), tendril::ScheduleError);
  // Its own files: ctest runs the other explorations, in parallel processes, with theirs.
  auto found = options("random");
  found.test = "Explore.BadReplay";
  const auto random = tendril::explore(found, seeds::bank_race);
  ASSERT_FALSE(random.ok());
  o.replay = random.schedule_file;
  o.test = "Another.Test";
  try {
    tendril::explore(o, seeds::bank_race);
    ADD_FAILURE() << "no ScheduleError";
  } catch (const tendril::ScheduleError& e) {
    EXPECT_NE(std::string(e.what()).find("is a schedule of test 'Explore.BadReplay', not of "
                                         "'Another.Test'"),
              std::string::npos)
        << e.what();
  }
}

// Shards run disjoint schedules that together cover all of them.
TEST(Explore, ShardsSplitTheSchedules) {
  std::uint64_t total = 0;
  for (std::uint64_t shard = 0; shard < 3; ++shard) {
    auto o = options("random", 30);
    o.test = "Explore.Shards";
    o.total_shards = 3;
    o.shard_index = shard;
    total += tendril::explore(o, [] { tendril::sleep(0s); }).schedules_run;
  }
  EXPECT_EQ(total, 30u);
}

// Malformed environment overrides are UsageErrors naming the variable.
TEST(Explore, BadEnvironmentValues) {
  ::setenv("TENDRIL_SCHEDULES", "lots", 1);
  try {
    tendril::ExploreOptions().from_env();
    ADD_FAILURE() << "no UsageError";
  } catch (const tendril::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("TENDRIL_SCHEDULES must be a whole number from 1 to "
                                         "18446744073709551615, got 'lots'"),
              std::string::npos);
  }
  ::unsetenv("TENDRIL_SCHEDULES");
  ::setenv("TENDRIL_POLICY", "chaos", 1);
  EXPECT_THROW(tendril::ExploreOptions().from_env(), tendril::UsageError);
  ::unsetenv("TENDRIL_POLICY");
}

// The GoogleTest helper: a correct body passes every schedule, and the summary is printed.
TEST(Explore, ExpectExploreOnACorrectBody) {
  tendril::ExploreOptions o;
  o.policy = "pct";
  o.schedules = 50;
  o.artifacts = artifacts();
  const auto r = tendril::expect_explore(o, locked_transfers);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.schedules_run, 50u);
}

// A sharded exploration: registered as Explore.ShardedBank/0../2 (or one test per GoogleTest
// shard when GTEST_TOTAL_SHARDS is set); each shard runs a third of the schedules of a correct
// (locked) transfer, and any of them would save a failing schedule.
TENDRIL_EXPLORE_TEST(Explore, ShardedBank, 3, [] {
  tendril::ExploreOptions o;
  o.policy = "random";
  o.schedules = 90;
  o.artifacts = artifacts();
  return o;
}) {
  locked_transfers();
}

namespace {

// A withdrawal race that a spawned greenlet (not main) reports: the exception dies with it.
void greenlet_overdraft() {
  int balance = 100;
  auto withdraw = [&balance](int amount, int work) {
    for (int i = 0; i < work; ++i) tendril::sleep(0s);
    if (balance >= amount) {
      tendril::sleep(0s);
      balance -= amount;
    }
  };
  auto a = tendril::spawn("withdraw a", withdraw, 80, 0);
  auto b = tendril::spawn("withdraw b", withdraw, 80, 3);
  auto auditor = tendril::spawn("auditor", [&] {
    a->join();
    b->join();
    if (balance < 0) throw std::logic_error("overdraft: balance is " + std::to_string(balance));
  });
  auditor->join();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

// An uncaught exception in a spawned greenlet fails the schedule, naming the greenlet; gevent's
// report-and-continue is an option, under which only main's outcome counts.
TEST(ExploreFailures, AGreenletErrorFailsTheRun) {
  auto o = options("random", 2000);
  o.test = "Explore.GreenletError";
  const auto r = tendril::explore(o, greenlet_overdraft);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure,
            "greenlet #4 'auditor' failed with std::logic_error: overdraft: balance is -60");
  o.greenlet_errors_fail = false;
  o.schedules = r.schedules_run;  // the same seeds, up to the failing one
  const auto lenient = tendril::explore(o, greenlet_overdraft);
  EXPECT_TRUE(lenient.ok()) << lenient.summary;
  EXPECT_EQ(lenient.schedules_run, r.schedules_run);
}

// The run stops at the greenlet's failure: main, spinning forever, would otherwise end in the
// step limit. The others are killed before main, so they unwind while main's locals still live.
TEST(ExploreFailures, AGreenletErrorStopsTheRunAndMainDiesLast) {
  std::vector<std::string> log;
  auto o = options("fifo");
  o.test = "Explore.StopAtOnce";
  o.sim.max_steps = 100000;
  const auto r = tendril::explore(o, [&] {
    struct Alive {
      std::vector<std::string>* log;
      bool alive = true;
      ~Alive() {
        alive = false;
        log->push_back("main's locals die");
      }
    } main_local{&log};
    tendril::Lock lock("held");
    auto holder = tendril::spawn("holder", [&] {
      std::lock_guard<tendril::Lock> guard(lock);
      struct Note {
        std::vector<std::string>* log;
        Alive* main_local;
        ~Note() {
          log->push_back(main_local->alive ? "holder unwinds, main alive" : "holder unwinds late");
        }
      } note{&log, &main_local};
      tendril::Event().wait();
    });
    tendril::spawn("thrower", [] {
      tendril::sleep(0s);
      throw std::runtime_error("boom");
    });
    for (;;) tendril::sleep(0s);
  });
  EXPECT_EQ(r.failure, "greenlet #3 'thrower' failed with std::runtime_error: boom");
  EXPECT_EQ(r.schedules_run, 1u);
  // The run, then the trace rerun: each time the holder unwinds first.
  EXPECT_EQ(log, (std::vector<std::string>{"holder unwinds, main alive", "main's locals die",
                                           "holder unwinds, main alive", "main's locals die"}));
}

// An exception leaving main fails the schedule with main's exception; the others die before
// main's locals in the run and in each rerun (the trace, the minimising runs).
TEST(ExploreFailures, MainsExceptionKillsTheOthersBeforeItsLocals) {
  std::vector<std::string> log;
  auto o = options("random", 50);
  o.test = "Explore.MainThrows";
  const auto r = tendril::explore(o, [&] {
    struct Alive {
      std::vector<std::string>* log;
      bool alive = true;
      ~Alive() { alive = false; }
    } main_local{&log};
    tendril::Lock lock("held");
    int balance = 100;
    auto holder = tendril::spawn("holder", [&] {
      std::lock_guard<tendril::Lock> guard(lock);
      struct Note {
        std::vector<std::string>* log;
        Alive* main_local;
        ~Note() { log->push_back(main_local->alive ? "main alive" : "holder unwinds late"); }
      } note{&log, &main_local};
      balance -= 160;
      tendril::Event().wait();
    });
    tendril::sleep(0s);
    if (balance < 0) throw std::logic_error("overdraft: balance is " + std::to_string(balance));
  });
  EXPECT_EQ(r.failure, "std::logic_error: overdraft: balance is -60");
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(std::count(log.begin(), log.end(), "main alive"), static_cast<long>(log.size()));
}

// A Divergence thrown inside a greenlet that catches everything still fails the replay, with the
// divergence's own report, never "passed".
TEST(ExploreFailures, ADivergenceCaughtInAGreenletFailsTheReplay) {
  int alternatives = 3;
  auto body = [&alternatives] {
    auto drawer = tendril::spawn("drawer", [&alternatives] {
      try {
        (void)tendril::random_below(static_cast<std::uint32_t>(alternatives));
      } catch (...) {
        // swallows everything, the Divergence included
      }
    });
    drawer->join();
    throw std::runtime_error("always fails");
  };
  auto o = options("random", 1);
  o.test = "Explore.CaughtDivergence";
  o.shrink_runs = 0;
  const auto r = tendril::explore(o, body);
  ASSERT_FALSE(r.ok());
  alternatives = 4;
  auto replay = o;
  replay.replay = r.schedule_file;
  const auto again = tendril::explore(replay, body);
  EXPECT_EQ(again.failure.substr(0, again.failure.find('\n')),
            "tendril::Divergence: tendril: replay of Explore.CaughtDivergence diverged at choice "
            "#0: the program offers a random choice among 4 alternatives; the schedule expected a "
            "random choice among 3");
}

// A replay that ends before the schedule's last choice fails; a replay leaves its file as it was.
TEST(ExploreFailures, AShortReplayFailsAndTheFileIsUntouched) {
  int draws = 3;
  auto body = [&draws] {
    for (int i = 0; i < draws; ++i) (void)tendril::random_below(2);
    throw std::runtime_error("always fails");
  };
  auto o = options("random", 1);
  o.test = "Explore.ShortReplay";
  o.shrink_runs = 0;
  const auto r = tendril::explore(o, body);
  ASSERT_FALSE(r.ok());
  const std::string before = read_file(r.schedule_file);
  auto replay = o;
  replay.replay = r.schedule_file;
  const auto same = tendril::explore(replay, body);
  EXPECT_EQ(same.failure, "std::runtime_error: always fails");
  draws = 2;
  const auto shorter = tendril::explore(replay, body);
  EXPECT_EQ(
      shorter.failure.substr(0, shorter.failure.find('\n')),
      "tendril::Divergence: tendril: replay of Explore.ShortReplay diverged: the run ended "
      "after 2 of the schedule's 3 choices; the next recorded one was #2 step 1 t=0.000000000s "
      "random 1 of 2 drawn by #1 'main'")
      << shorter.failure;
  EXPECT_NE(shorter.failure.find("\n  (the replayed run failed with: std::runtime_error: always "
                                 "fails)"),
            std::string::npos)
      << shorter.failure;
  EXPECT_EQ(read_file(r.schedule_file), before);
}

// Plain explore() honours TENDRIL_REPLAY when it names a schedule of its test; a schedule of
// another test leaves it exploring as usual.
TEST(ExploreFailures, PlainExploreHonoursTendrilReplay) {
  auto o = options("random");
  o.test = "Explore.EnvReplay";
  const auto r = tendril::explore(o, seeds::bank_race);
  ASSERT_FALSE(r.ok());
  ::setenv("TENDRIL_REPLAY", r.schedule_file.c_str(), 1);
  const auto again = tendril::explore(o, seeds::bank_race);
  auto other = options("random", 7);
  other.test = "Explore.SomethingElse";
  const auto elsewhere = tendril::explore(other, [] { tendril::sleep(0s); });
  ::unsetenv("TENDRIL_REPLAY");
  EXPECT_EQ(again.schedules_run, 1u);
  EXPECT_EQ(again.failure, r.failure);
  EXPECT_EQ(again.summary.rfind("tendril: replayed " + r.schedule_file, 0), 0u) << again.summary;
  EXPECT_TRUE(elsewhere.ok());
  EXPECT_EQ(elsewhere.schedules_run, 7u);
}

// The printed commands: absolute paths, a cd to where the test ran, the seed form beside the
// file form when the program reads the environment (from_env); the seed form reruns exactly the
// failing seed. A program that does not read it gets no seed form (it would not work there).
TEST(ExploreFailures, ReplayCommandsArePasteable) {
  auto o = options("random");
  o.test = "Explore.Commands";
  EXPECT_EQ(tendril::explore(o, seeds::bank_race, "./the-test").seed_command, "");
  o.from_env();
  o.artifacts = artifacts();
  const auto r = tendril::explore(o, seeds::bank_race, "./the-test");
  ASSERT_FALSE(r.ok());
  ASSERT_TRUE(std::filesystem::path(r.schedule_file).is_absolute()) << r.schedule_file;
  const std::string cd = "cd " + std::filesystem::current_path().string() + " && ";
  EXPECT_EQ(r.replay_command, cd + "TENDRIL_REPLAY=" + r.schedule_file + " ./the-test");
  const std::uint64_t seed = r.seed;
  EXPECT_EQ(seed, tendril::schedule_seed(o.seed, r.schedules_run - 1));
  EXPECT_EQ(r.seed_command, cd + "TENDRIL_ARTIFACTS=" + artifacts() +
                                " TENDRIL_POLICY=random TENDRIL_SEED=" + std::to_string(seed) +
                                " TENDRIL_SCHEDULES=1 ./the-test");
  auto rerun = o;
  rerun.seed = seed;
  rerun.schedules = 1;
  const auto again = tendril::explore(rerun, seeds::bank_race);
  EXPECT_EQ(again.failure, r.failure);
  EXPECT_EQ(again.schedule_file, r.schedule_file);
}

// A Ctrl-C ends the exploration after the schedule in progress: the summary says how far it got
// and where to resume, the result is not ok, and SIGINT's disposition is restored.
TEST(ExploreLongRuns, ACtrlCEndsTheExplorationWithASummary) {
  int runs = 0;
  auto o = options("random", 1000);
  o.test = "Explore.Interrupted";
  o.seed = 40;
  o.jobs = 1;  // `runs` counts across schedules: one process
  const auto r = tendril::explore(o, [&runs] {
    if (++runs == 5) std::raise(SIGINT);  // as if the user pressed Ctrl-C during schedule 5
    tendril::sleep(0s);
  });
  EXPECT_TRUE(r.interrupted);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.failures, 0u);
  EXPECT_EQ(r.schedules_run, 5u);
  EXPECT_NE(r.summary.find("tendril: interrupted (Ctrl-C) after 5 schedules; the next schedule is "
                           "#5: resume with TENDRIL_SEED=40 TENDRIL_FIRST_SCHEDULE=5\n"),
            std::string::npos)
      << r.summary;
  struct sigaction now {};
  ASSERT_EQ(::sigaction(SIGINT, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

// Progress lines go to stderr at the interval asked for (here: after every schedule).
TEST(ExploreLongRuns, ProgressLines) {
  auto o = options("random", 3);
  o.test = "Explore.Progress";
  o.progress = "lines";
  o.progress_every_s = 0;
  ::testing::internal::CaptureStderr();
  const auto r = tendril::explore(o, [] { tendril::sleep(0s); });
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(r.ok());
  const std::regex line(
      "tendril: exploring Explore.Progress with random: ([0-9]+) schedules \\([0-9]+/s\\), 1 "
      "distinct, [0-9]+\\.[0-9] s, 0 failures\n");
  std::vector<std::string> counts;
  for (std::sregex_iterator it(err.begin(), err.end(), line), end; it != end; ++it) {
    counts.push_back((*it)[1].str());
  }
  EXPECT_EQ(counts, (std::vector<std::string>{"1", "2", "3"})) << err;
  o.progress = "off";
  ::testing::internal::CaptureStderr();
  (void)tendril::explore(o, [] { tendril::sleep(0s); });
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

// DFS says whether it exhausted its bounded space or stopped at the schedule limit.
TEST(ExploreLongRuns, DfsSaysWhetherItExhaustedTheBound) {
  auto body = [] {
    auto a = tendril::spawn([] { tendril::sleep(0s); });
    auto b = tendril::spawn([] { tendril::sleep(0s); });
    tendril::joinall({a, b});
  };
  auto o = options("dfs", 100000);
  o.test = "Explore.DfsExhausted";
  o.dfs_bound = 1;
  const auto all = tendril::explore(o, body);
  EXPECT_TRUE(all.exhausted);
  EXPECT_NE(all.summary.find("tendril: the bounded space is exhausted: every schedule within delay "
                             "bound 1 ran (" +
                             std::to_string(all.schedules_run) + ")\n"),
            std::string::npos)
      << all.summary;
  o.schedules = 2;
  const auto cut = tendril::explore(o, body);
  EXPECT_FALSE(cut.exhausted);
  EXPECT_NE(cut.summary.find("tendril: stopped at the schedule limit (2) before exhausting delay "
                             "bound 1\n"),
            std::string::npos)
      << cut.summary;
}

// Delay bounding cannot afford a bug that needs far entries of the ready queue; bounding the
// number of answers away from FIFO finds it at bound 2, and iterative deepening says it got there
// after exhausting bounds 0 and 1.
TEST(ExploreDfs, ChoiceBoundingReachesFarEntries) {
  auto o = options("dfs", 100000);
  o.test = "Explore.DfsChoices";
  o.dfs_bound = 3;
  const auto delay = tendril::explore(o, seeds::lost_update_far);
  EXPECT_TRUE(delay.ok()) << delay.summary;
  EXPECT_TRUE(delay.exhausted) << delay.summary;
  EXPECT_GT(delay.schedules_run, 1000u);  // more runs than the choice bound needs, all passing

  o.dfs_bounding = "choices";
  o.dfs_bound = 2;
  const auto choices = tendril::explore(o, seeds::lost_update_far);
  ASSERT_FALSE(choices.ok()) << choices.summary;
  EXPECT_EQ(choices.failure, "std::logic_error: lost update: counter is 1");
  EXPECT_EQ(choices.minimal_away, 2u);
  const std::string name = std::filesystem::path(choices.found_file).filename().string();
  EXPECT_EQ(name.rfind("Explore_DfsChoices-dfs-choices2-", 0), 0u) << name;
  EXPECT_NE(choices.summary.find("with dfs (choice bound 2)"), std::string::npos)
      << choices.summary;

  o.dfs_deepening = true;
  o.dfs_bound = 5;
  const auto deep = tendril::explore(o, seeds::lost_update_far);
  ASSERT_FALSE(deep.ok()) << deep.summary;
  EXPECT_EQ(deep.dfs_level, 2u);   // levels 0 and 1 have no failing schedule
  EXPECT_EQ(deep.found_away, 2u);  // so the first failure found is one of the cheapest
  EXPECT_NE(deep.summary.find("with dfs (choice bound 5, deepening from 0; reached 2)"),
            std::string::npos)
      << deep.summary;
}

// With deepening and no failure, every level up to the bound is exhausted in turn; the total
// counts each level's runs (level 1 reruns level 0's one schedule).
TEST(ExploreDfs, DeepeningExhaustsEveryLevel) {
  auto body = [] {
    auto a = tendril::spawn([] { tendril::sleep(0s); });
    auto b = tendril::spawn([] { tendril::sleep(0s); });
    tendril::joinall({a, b});
  };
  auto o = options("dfs", 100000);
  o.test = "Explore.DfsDeepening";
  o.dfs_bounding = "choices";
  std::vector<std::uint64_t> level_runs;
  for (std::uint32_t bound : {0u, 1u, 2u}) {
    o.dfs_bound = bound;
    level_runs.push_back(tendril::explore(o, body).schedules_run);
  }
  o.dfs_deepening = true;
  const auto deep = tendril::explore(o, body);
  EXPECT_TRUE(deep.exhausted);
  EXPECT_EQ(deep.dfs_level, 2u);
  EXPECT_EQ(level_runs[0], 1u);
  EXPECT_LT(level_runs[1], level_runs[2]);
  EXPECT_EQ(deep.schedules_run, level_runs[0] + level_runs[1] + level_runs[2]);
  EXPECT_NE(deep.summary.find("tendril: the bounded space is exhausted: every schedule within "
                              "choice bound 2 ran (" +
                              std::to_string(deep.schedules_run) + ")\n"),
            std::string::npos)
      << deep.summary;
}

// Bad DFS settings, in the options or the environment, are UsageErrors naming them.
TEST(ExploreDfs, BadBoundingIsRefused) {
  auto o = options("dfs", 10);
  o.test = "Explore.DfsBad";
  o.dfs_bounding = "preemptions";
  try {
    tendril::explore(o, [] {});
    ADD_FAILURE() << "no UsageError";
  } catch (const tendril::UsageError& e) {
    EXPECT_STREQ(e.what(),
                 "tendril::explore: ExploreOptions::dfs_bounding must be delay or choices, got "
                 "'preemptions'");
  }
  ::setenv("TENDRIL_DFS_BOUNDING", "Choices", 1);
  try {
    tendril::ExploreOptions().from_env();
    ADD_FAILURE() << "no UsageError";
  } catch (const tendril::UsageError& e) {
    EXPECT_STREQ(e.what(), "tendril: TENDRIL_DFS_BOUNDING must be delay or choices, got 'Choices'");
  }
  ::setenv("TENDRIL_DFS_BOUNDING", "choices", 1);
  ::setenv("TENDRIL_DFS_DEEPENING", "yes", 1);
  std::string what;
  try {
    tendril::ExploreOptions().from_env();
  } catch (const tendril::UsageError& e) {
    what = e.what();
  }
  ::setenv("TENDRIL_DFS_DEEPENING", "1", 1);
  const auto good = tendril::ExploreOptions().from_env();
  ::unsetenv("TENDRIL_DFS_BOUNDING");
  ::unsetenv("TENDRIL_DFS_DEEPENING");
  EXPECT_NE(what.find("TENDRIL_DFS_DEEPENING"), std::string::npos) << what;
  EXPECT_NE(what.find("'yes'"), std::string::npos) << what;
  EXPECT_EQ(good.dfs_bounding, "choices");
  EXPECT_TRUE(good.dfs_deepening);
}

// POS finds the bank race too, and is deterministic: the same seed gives the same schedule.
TEST(ExplorePortfolio, PosFindsTheBankRaceDeterministically) {
  auto o = options("pos");
  o.test = "Explore.Pos";
  const auto first = tendril::explore(o, seeds::bank_race);
  ASSERT_FALSE(first.ok()) << first.summary;
  EXPECT_EQ(first.failure, "std::logic_error: overdraft: balance is -60");
  EXPECT_EQ(first.found_by, "pos");
  const auto again = tendril::explore(o, seeds::bank_race);
  EXPECT_EQ(again.schedules_run, first.schedules_run);
  EXPECT_EQ(read_file(again.found_file), read_file(first.found_file));
  const std::string name = std::filesystem::path(first.found_file).filename().string();
  EXPECT_EQ(name, "Explore_Pos-pos-" + std::to_string(first.seed) + ".schedule");
}

// The portfolio draws each schedule's strategy from its seed: all four appear over 40 seeds, and
// a seed always draws the same one.
TEST(ExplorePortfolio, EachSeedDrawsOneOfFourStrategies) {
  auto o = options("portfolio", 1);
  o.test = "Explore.PortfolioDraw";
  o.shrink_runs = 0;
  o.trace_max_steps = 0;
  std::map<std::string, int> drawn;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    o.seed = seed;
    const auto r = tendril::explore(o, [] { throw std::runtime_error("always"); });
    ASSERT_FALSE(r.ok());
    ++drawn[r.found_by];
    EXPECT_EQ(tendril::explore(o, [] { throw std::runtime_error("always"); }).found_by, r.found_by);
  }
  EXPECT_EQ(drawn.size(), 4u);
  for (const char* s : {"pct-d3", "random", "pct-d2", "pos"}) {
    EXPECT_GE(drawn[s], 4) << s;  // roughly 10 each
  }
}

// A failure found by the portfolio names the strategy that found it, in the report and the file
// name, and its seed command reruns that strategy alone at that seed: the same schedule.
TEST(ExplorePortfolio, FailureNamesItsStrategyAndItsSeedCommandRerunsIt) {
  auto o = options("portfolio");
  o.test = "Explore.Portfolio";
  o.env_applied = true;  // print the seed form, as after from_env()
  const auto r = tendril::explore(o, seeds::bank_race);
  ASSERT_FALSE(r.ok()) << r.summary;
  EXPECT_EQ(r.failure, "std::logic_error: overdraft: balance is -60");
  const std::string seed = std::to_string(r.seed);
  EXPECT_NE(
      r.summary.find("tendril: found by the portfolio's " + r.found_by + " (seed " + seed + ")\n"),
      std::string::npos)
      << r.summary;
  const std::string name = std::filesystem::path(r.found_file).filename().string();
  EXPECT_EQ(name, "Explore_Portfolio-" + r.found_by + "-" + seed + ".schedule");
  auto alone = options("random", 1);
  alone.test = o.test;
  alone.seed = r.seed;
  alone.policy = r.found_by.rfind("pct", 0) == 0 ? "pct" : r.found_by;
  if (alone.policy == "pct") alone.pct_depth = r.found_by == "pct-d3" ? 3 : 2;
  EXPECT_NE(r.seed_command.find("TENDRIL_POLICY=" + alone.policy + " TENDRIL_SEED=" + seed +
                                " TENDRIL_SCHEDULES=1"),
            std::string::npos)
      << r.seed_command;
  const std::string found = read_file(r.found_file);
  const auto rerun = tendril::explore(alone, seeds::bank_race);
  ASSERT_FALSE(rerun.ok()) << rerun.summary;
  EXPECT_EQ(rerun.failure, r.failure);
  EXPECT_EQ(read_file(rerun.found_file), found);
}

// Schedule i's seed is the base seed for i = 0 and a hash of (base, i) after: explorations from
// consecutive base seeds share no schedule (with seed + i they shared all but one), and the
// first one's seed is the base, so a printed seed reruns with TENDRIL_SCHEDULES=1.
TEST(ExploreSeeds, ConsecutiveBasesDoNotOverlap) {
  std::set<std::uint64_t> first, second;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    first.insert(tendril::schedule_seed(1, i));
    second.insert(tendril::schedule_seed(2, i));
  }
  EXPECT_EQ(first.size(), 1000u);
  std::vector<std::uint64_t> shared;
  std::set_intersection(first.begin(), first.end(), second.begin(), second.end(),
                        std::back_inserter(shared));
  EXPECT_TRUE(shared.empty()) << shared.size() << " seeds shared";
  EXPECT_EQ(tendril::schedule_seed(77, 0), 77u);
  EXPECT_NE(tendril::schedule_seed(77, 1), 78u);
}

// An interrupted exploration resumes where it stopped: first_schedule = k runs schedule k's seed
// first, the one a full run would have run k-th.
TEST(ExploreSeeds, FirstScheduleResumesAtThatSchedule) {
  auto o = options("random", 1);
  o.test = "Explore.Resume";
  o.seed = 40;
  o.first_schedule = 5;
  o.shrink_runs = 0;
  o.trace_max_steps = 0;
  const auto r = tendril::explore(o, [] { throw std::runtime_error("always"); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.seed, tendril::schedule_seed(40, 5));
  ::setenv("TENDRIL_FIRST_SCHEDULE", "5", 1);
  const auto from_env = tendril::ExploreOptions().from_env();
  ::setenv("TENDRIL_FIRST_SCHEDULE", "-5", 1);
  std::string what;
  try {
    tendril::ExploreOptions().from_env();
  } catch (const tendril::UsageError& e) {
    what = e.what();
  }
  ::unsetenv("TENDRIL_FIRST_SCHEDULE");
  EXPECT_EQ(from_env.first_schedule, 5u);
  EXPECT_NE(what.find("TENDRIL_FIRST_SCHEDULE"), std::string::npos) << what;
  EXPECT_NE(what.find("'-5'"), std::string::npos) << what;
}

// Bad progress settings in the environment are UsageErrors naming the variable.
TEST(ExploreLongRuns, BadProgressEnvironment) {
  ::setenv("TENDRIL_PROGRESS_EVERY", "soon", 1);
  try {
    tendril::ExploreOptions().from_env();
    ADD_FAILURE() << "no UsageError";
  } catch (const tendril::UsageError& e) {
    EXPECT_STREQ(e.what(),
                 "tendril: TENDRIL_PROGRESS_EVERY must be a number of seconds from 0 to 1000000, "
                 "got 'soon'");
  }
  ::unsetenv("TENDRIL_PROGRESS_EVERY");
  ::setenv("TENDRIL_PROGRESS", "loud", 1);
  try {
    tendril::ExploreOptions().from_env();
    ADD_FAILURE() << "no UsageError";
  } catch (const tendril::UsageError& e) {
    EXPECT_STREQ(e.what(), "tendril: TENDRIL_PROGRESS must be auto, lines or off, got 'loud'");
  }
  ::unsetenv("TENDRIL_PROGRESS");
}

// The shard guard reads --gtest_filter as GoogleTest does.
TEST(ExploreLongRuns, ShardGuardFilterSyntax) {
  using tendril::detail::ShardGuard;
  EXPECT_TRUE(ShardGuard::matches_filter("Explore.Bank*", "Explore.BankRace"));
  EXPECT_FALSE(ShardGuard::matches_filter("Explore.Bank*", "Explore.Dfs"));
  EXPECT_TRUE(ShardGuard::matches_filter("A.x:Explore.?fs", "Explore.Dfs"));
  EXPECT_FALSE(ShardGuard::matches_filter("*-Explore.D*", "Explore.Dfs"));
  EXPECT_TRUE(ShardGuard::matches_filter("-Explore.D*", "Explore.Bank"));
  EXPECT_TRUE(ShardGuard::matches_filter("Explore.ShardedBank/*", "Explore.ShardedBank/2"));
}

namespace {

// A lost update that needs `b` to run ahead of a's wakeup exactly twice (two answers away from
// FIFO), among six greenlets that only yield: random schedules that find it carry a hundred
// irrelevant answers away from FIFO.
void noisy_lost_update() {
  int counter = 0;
  auto a = tendril::spawn("a", [&counter] {
    const int v = counter;
    tendril::sleep(0s);
    counter = v + 1;
  });
  auto b = tendril::spawn("b", [&counter] {
    for (int i = 0; i < 2; ++i) tendril::sleep(0s);
    ++counter;
  });
  std::vector<tendril::Ref<tendril::Greenlet>> all{a, b};
  for (int i = 0; i < 6; ++i) {
    all.push_back(tendril::spawn([] {
      for (int k = 0; k < 20; ++k) tendril::sleep(0s);
    }));
  }
  tendril::joinall(all);
  if (counter != 2) throw std::logic_error("lost update: counter is " + std::to_string(counter));
}

}  // namespace

// A failure is minimised to its two essential answers; both schedules are saved and replay the
// same failure; the summary says how far it came down.
TEST(ExploreShrink, AFailureIsCutDownToItsEssence) {
  auto o = options("random", 1000);
  o.test = "Explore.Shrink";
  const auto r = tendril::explore(o, noisy_lost_update);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure, "std::logic_error: lost update: counter is 1");
  EXPECT_GT(r.found_away, 50u);
  EXPECT_EQ(r.minimal_away, 2u);
  EXPECT_EQ(tendril::away_from_fifo(tendril::load_schedule(r.schedule_file)), 2u);
  EXPECT_EQ(tendril::away_from_fifo(tendril::load_schedule(r.found_file)), r.found_away);
  EXPECT_NE(r.schedule_file, r.found_file);
  EXPECT_NE(r.summary.find("tendril: minimised to 2 choices away from FIFO (found with " +
                           std::to_string(r.found_away) + ") in " + std::to_string(r.shrink_runs) +
                           " runs\n"),
            std::string::npos)
      << r.summary;
  for (const std::string& file : {r.schedule_file, r.found_file}) {
    auto replay = o;
    replay.replay = file;
    EXPECT_EQ(tendril::explore(replay, noisy_lost_update).failure, r.failure) << file;
  }
  // The minimal schedule's policy says where it came from.
  EXPECT_EQ(tendril::load_schedule(r.schedule_file).policy.rfind("minimised from random(seed=", 0),
            0u);
}

// Shrinking keeps the same failure: a candidate that fails differently is not taken.
TEST(ExploreShrink, OnlyTheSameFailureCounts) {
  auto body = [] {
    const auto x = tendril::random_below(3);
    const auto y = tendril::random_below(3);
    if (x == 2 && y == 2) throw std::logic_error("both");
    if (x == 2 || y == 2) throw std::logic_error("one");
  };
  class Answers final : public tendril::Chooser {
   public:
    std::uint32_t choose(const tendril::ChoicePoint&) override { return 2; }
  };
  auto recorder = std::make_unique<tendril::RecordingChooser>(std::make_unique<Answers>());
  auto* rec = recorder.get();
  tendril::SimHub hub(std::move(recorder));
  const std::string failure = tendril::run_checked(hub, body);
  ASSERT_EQ(failure, "std::logic_error: both");
  const tendril::Schedule schedule = rec->schedule("Explore.Same", 0);
  ASSERT_EQ(tendril::away_from_fifo(schedule), 2u);
  const auto minimal = tendril::shrink(hub, schedule, failure, body, {}, 100);
  EXPECT_EQ(minimal.failure, "std::logic_error: both");
  EXPECT_EQ(tendril::away_from_fifo(minimal.schedule), 2u);
  EXPECT_GT(minimal.runs, 3u);  // it tried: dropping either, both, and lowering each
  EXPECT_LE(minimal.runs, 100u);
}

// Two failures are the same when they differ only in where the hub was (time, step, policy).
TEST(ExploreShrink, FailureSignatureIgnoresThePosition) {
  EXPECT_EQ(tendril::failure_signature(
                "tendril::Deadlock: tendril: deadlock at virtual time 0.000000000 s, step 12, "
                "choice 3, policy random(seed=4): nothing is ready\n  #2 blocked"),
            "tendril::Deadlock: tendril: deadlock at <position>: nothing is ready\n  #2 blocked");
  EXPECT_EQ(tendril::failure_signature("std::logic_error: overdraft: balance is -60"),
            "std::logic_error: overdraft: balance is -60");
}

// The summary tells the failing run's end in text: per greenlet, its last stretches, with the
// choices away from FIFO marked and the failure where it happened.
TEST(ExploreShrink, TheSummaryTellsTheLastStepsOfEachGreenlet) {
  auto o = options("random");
  o.test = "Explore.LastSteps";
  const auto r = tendril::explore(o, seeds::bank_race);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.last_steps,
            "  #1 main        1: start -> join #2 'withdraw a' | 65: resume -> FAILED: "
            "std::logic_error: overdraft: balance is -60\n"
            "  #2 withdraw a  46: start -> sleep(0) | 56: resume -> exit\n"
            "  #3 withdraw b  ... | 37: *resume -> sleep(0) | 42: *resume -> sleep(0) | 51: "
            "resume -> sleep(0) | 61: resume -> exit\n");
  EXPECT_NE(r.summary.find("tendril: the last steps of each greenlet (seq: why it ran -> where it "
                           "stopped; * = a choice away from FIFO):\n" +
                           r.last_steps + "tendril: replay it with: "),
            std::string::npos)
      << r.summary;
}

// Every environment override is parsed strictly and range-checked, naming the variable and the
// value: no sign, no space, no silent truncation to a smaller type, no 0 where it means nothing,
// no depth that would cost a gigabyte per schedule.
TEST(ExploreBadInput, EnvironmentNumbersAreStrict) {
  auto error_of = [](const char* name, const char* value) {
    ::setenv(name, value, 1);
    std::string what;
    try {
      tendril::ExploreOptions().from_env();
    } catch (const tendril::UsageError& e) {
      what = e.what();
    }
    ::unsetenv(name);
    return what;
  };
  const std::string u64 = "18446744073709551615";
  EXPECT_EQ(error_of("TENDRIL_SCHEDULES", " -1"),
            "tendril: environment variable TENDRIL_SCHEDULES must be a whole number from 1 to " +
                u64 + ", got ' -1'");
  EXPECT_EQ(error_of("TENDRIL_SCHEDULES", "0"),
            "tendril: environment variable TENDRIL_SCHEDULES must be a whole number from 1 to " +
                u64 + ", got '0'");
  EXPECT_EQ(error_of("TENDRIL_SCHEDULES", "+5"),
            "tendril: environment variable TENDRIL_SCHEDULES must be a whole number from 1 to " +
                u64 + ", got '+5'");
  EXPECT_EQ(error_of("TENDRIL_SEED", "18446744073709551616"),
            "tendril: environment variable TENDRIL_SEED must be a whole number from 0 to " + u64 +
                ", got '18446744073709551616'");
  EXPECT_EQ(error_of("TENDRIL_PCT_DEPTH", "4294967299"),
            "tendril: environment variable TENDRIL_PCT_DEPTH must be a whole number from 1 to "
            "100, got '4294967299'");
  EXPECT_EQ(error_of("TENDRIL_PCT_DEPTH", "0"),
            "tendril: environment variable TENDRIL_PCT_DEPTH must be a whole number from 1 to "
            "100, got '0'");
  EXPECT_EQ(error_of("TENDRIL_PCT_DEPTH", "100000000"),
            "tendril: environment variable TENDRIL_PCT_DEPTH must be a whole number from 1 to "
            "100, got '100000000'");
  EXPECT_EQ(error_of("TENDRIL_DFS_BOUND", "4294967296"),
            "tendril: environment variable TENDRIL_DFS_BOUND must be a whole number from 0 to "
            "10000, got '4294967296'");
  EXPECT_EQ(error_of("TENDRIL_SHRINK", "1e3"),
            "tendril: environment variable TENDRIL_SHRINK must be a whole number from 0 to "
            "100000000, got '1e3'");
  EXPECT_EQ(error_of("TENDRIL_SEED", "42"), "");
}

// Options set in code are checked as strictly.
TEST(ExploreBadInput, OptionsThatMeanNothingAreRefused) {
  auto what_of = [](tendril::ExploreOptions o) {
    o.test = "Explore.BadOptions";
    try {
      tendril::explore(o, [] {});
    } catch (const tendril::UsageError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  tendril::ExploreOptions o;
  o.schedules = 0;
  EXPECT_EQ(what_of(o), "tendril::explore: ExploreOptions::schedules is 0: nothing would run");
  o = {};
  o.pct_depth = 0;
  EXPECT_EQ(what_of(o), "tendril::explore: ExploreOptions::pct_depth must be from 1 to 100, got 0");
  o = {};
  o.policy = "chaos";
  EXPECT_EQ(what_of(o),
            "tendril::explore: ExploreOptions::policy must be fifo, random, pct, pos, portfolio or "
            "dfs, got "
            "'chaos'");
}

// A replay file must be a regular file: /dev/zero (endless) and a directory are refused at once.
TEST(ExploreBadInput, ReplayFilesMustBeRegularFiles) {
  auto o = options("random");
  o.test = "Explore.BadReplayFile";
  for (const std::string path : {"/dev/zero", "/tmp"}) {
    o.replay = path;
    try {
      tendril::explore(o, [] {});
      ADD_FAILURE() << "no ScheduleError for " << path;
    } catch (const tendril::ScheduleError& e) {
      EXPECT_EQ(std::string(e.what()), "tendril: schedule file " + path + " is not a regular file");
    }
  }
}

// An artifacts folder that cannot be written does not hide the failure found: it is reported,
// with why nothing was saved.
TEST(ExploreBadInput, AnUnwritableArtifactsFolderStillReportsTheFailure) {
  auto o = options("random");
  o.test = "Explore.Unwritable";
  o.artifacts = "/proc/tendril-cannot-write-here";
  const auto r = tendril::explore(o, seeds::bank_race);
  EXPECT_EQ(r.failures, 1u);
  EXPECT_EQ(r.failure, "std::logic_error: overdraft: balance is -60");
  EXPECT_EQ(r.schedule_file, "");
  EXPECT_EQ(r.replay_command, "");
  EXPECT_EQ(r.minimal_away, 8u);
  EXPECT_NE(r.save_error.find("(the artifacts folder is ExploreOptions::artifacts or "
                              "TENDRIL_ARTIFACTS: '/proc/tendril-cannot-write-here')"),
            std::string::npos)
      << r.save_error;
  EXPECT_NE(r.summary.find("tendril: failure: std::logic_error: overdraft: balance is -60\n"
                           "tendril: could not save the schedule: "),
            std::string::npos)
      << r.summary;
}

// Determinism self-check: the same 200 schedules (random and PCT, on a program with greenlets,
// a queue, timers and random draws) give the same schedule hashes on a fresh hub and on a warm,
// reset one, run after run. (The optimised and ASan builds are compared through the committed
// schedule fixture in tests/trace.)
TEST(ExploreDeterminism, TheSameSchedulesTwiceGiveTheSameHashes) {
  auto body = [] {
    tendril::Queue<int> q(2);
    std::vector<tendril::Ref<tendril::Greenlet>> all;
    for (int p = 0; p < 3; ++p) {
      all.push_back(tendril::spawn([&q, p] {
        for (int i = 0; i < 4; ++i) {
          if (tendril::random_below(3) == 0) tendril::sleep(std::chrono::milliseconds(1));
          q.put(p * 10 + i);
        }
      }));
    }
    all.push_back(tendril::spawn([&q] {
      for (int i = 0; i < 12; ++i) (void)q.get();
    }));
    tendril::joinall(all);
  };
  auto hashes = [&](bool warm) {
    std::vector<std::uint64_t> out;
    tendril::SimHub reused;
    for (std::uint64_t seed = 1; seed <= 100; ++seed) {
      for (int pct = 0; pct < 2; ++pct) {
        std::unique_ptr<tendril::Chooser> c;
        if (pct) {
          c = std::make_unique<tendril::Pct>(seed, 3, 60);
        } else {
          c = std::make_unique<tendril::Random>(seed);
        }
        // The hash runs over recorded choices (as in explore()).
        c = std::make_unique<tendril::RecordingChooser>(std::move(c));
        if (warm) {
          reused.reset(std::move(c));
          tendril::run(reused, body);
          out.push_back(reused.schedule_hash());
        } else {
          tendril::SimHub fresh(std::move(c));
          tendril::run(fresh, body);
          out.push_back(fresh.schedule_hash());
        }
      }
    }
    return out;
  };
  const auto first = hashes(false);
  EXPECT_EQ(hashes(false), first);
  EXPECT_EQ(hashes(true), first);
  EXPECT_GT(std::set<std::uint64_t>(first.begin(), first.end()).size(), 150u);  // really varied
}
