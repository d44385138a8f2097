// SPDX-License-Identifier: Apache-2.0
// explore() on several processes (ExploreOptions::jobs): the same result as one process, and
// every way a worker can go wrong reported with what and where.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <new>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>

#include "seeds.hpp"
#include "tendril/explore.hpp"

using namespace std::chrono_literals;

namespace {

std::string artifacts() {
  return (std::filesystem::temp_directory_path() / ("tendril-jobs-" + std::to_string(::getpid())))
      .string();
}

tendril::ExploreOptions options(const char* test, unsigned jobs) {
  tendril::ExploreOptions o;
  o.test = test;
  o.jobs = jobs;
  o.artifacts = artifacts();
  o.progress = "off";
  return o;
}

// The pid of the process that runs the test: a worker is any other.
const pid_t test_process = ::getpid();

}  // namespace

// Four workers find the failure one process finds first (not merely some failure): the same
// schedule, seed, strategy, counts, files and summary.
TEST(ExploreJobs, FindsTheFirstFailureOneProcessFinds) {
  auto o = options("ExploreJobs.LostUpdate", 1);
  o.seed = 11;
  const auto one = tendril::explore(o, seeds::lost_update_far);
  ASSERT_FALSE(one.ok()) << one.summary;
  ASSERT_GT(one.schedules_run, 4u) << "too easy a bug to tell the workers' order apart";
  EXPECT_EQ(one.jobs, 1u);

  o.jobs = 4;
  const auto four = tendril::explore(o, seeds::lost_update_far);
  EXPECT_EQ(four.jobs, 4u);
  EXPECT_EQ(four.failure, one.failure);
  EXPECT_EQ(four.failure, "std::logic_error: lost update: counter is 1");
  EXPECT_EQ(four.seed, one.seed);
  EXPECT_EQ(four.found_by, one.found_by);
  EXPECT_EQ(four.schedules_run, one.schedules_run);
  EXPECT_EQ(four.distinct, one.distinct);
  EXPECT_EQ(four.found_file, one.found_file);
  EXPECT_EQ(four.schedule_file, one.schedule_file);
  EXPECT_EQ(four.minimal_away, one.minimal_away);
  EXPECT_EQ(four.summary, one.summary);
  std::filesystem::remove_all(artifacts());
}

// A passing exploration counts the same schedules and interleavings on any number of processes,
// and a shard on workers runs exactly that shard's schedules.
TEST(ExploreJobs, PassingExplorationsAndShardsCountTheSame) {
  const auto body = [] {
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 3; ++i) gs.push_back(tendril::spawn([] { tendril::sleep(0s); }));
    tendril::joinall(gs);
  };
  auto o = options("ExploreJobs.Passing", 1);
  o.schedules = 300;
  const auto one = tendril::explore(o, body);
  o.jobs = 3;
  const auto three = tendril::explore(o, body);
  ASSERT_TRUE(one.ok() && three.ok()) << one.summary << three.summary;
  EXPECT_EQ(three.jobs, 3u);
  EXPECT_EQ(one.schedules_run, 300u);
  EXPECT_EQ(three.schedules_run, 300u);
  EXPECT_EQ(three.distinct, one.distinct);
  EXPECT_EQ(three.summary, one.summary);

  o.total_shards = 3;
  o.shard_index = 1;
  o.jobs = 1;
  const auto shard_one = tendril::explore(o, body);
  o.jobs = 2;
  const auto shard_two = tendril::explore(o, body);
  EXPECT_LT(shard_one.schedules_run, 300u);
  EXPECT_GT(shard_one.schedules_run, 0u);
  EXPECT_EQ(shard_two.schedules_run, shard_one.schedules_run);
  EXPECT_EQ(shard_two.summary, shard_one.summary);
}

// A failure only the workers see (the body depends on the process it runs in) is reported as
// one that does not repeat, naming the schedule, its seed and what the worker saw; nothing is
// minimised or traced.
TEST(ExploreJobs, AFailureThatDoesNotRepeatHereIsReportedAsSuch) {
  auto o = options("ExploreJobs.OnlyInWorkers", 2);
  o.seed = 5;
  const auto r = tendril::explore(o, [] {
    tendril::sleep(0s);
    if (::getpid() != test_process) throw std::runtime_error("only in workers");
  });
  ASSERT_EQ(r.failures, 1u) << r.summary;
  EXPECT_EQ(r.schedules_run, 1u);
  EXPECT_EQ(r.failure,
            "schedule #0 (seed 5) failed in a worker process (std::runtime_error: only in "
            "workers) but passed when run again in this process: the test depends on something "
            "outside the simulation (state kept across runs, the wall clock, the process id...); "
            "explore it in one process with ExploreOptions::jobs = 1 (TENDRIL_JOBS=1)");
  EXPECT_EQ(r.shrink_runs, 0u);
  EXPECT_TRUE(r.trace_file.empty());
  std::filesystem::remove_all(artifacts());
}

// A worker killed during a schedule: the schedule is named, with its seed and how the worker
// ended, and run again here (where this body survives it, so it is reported as not repeating).
TEST(ExploreJobs, AWorkerKilledDuringAScheduleIsNamed) {
  auto o = options("ExploreJobs.Killed", 2);
  o.seed = 9;
  ::testing::internal::CaptureStderr();
  const auto r = tendril::explore(o, [] {
    if (::getpid() != test_process) ::kill(::getpid(), SIGKILL);
  });
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(std::regex_match(err, std::regex("tendril: schedule #0 \\(seed 9\\) of "
                                               "ExploreJobs.Killed: worker process [0-9]+ ended "
                                               "with signal 9 \\(Killed\\); running it again in "
                                               "this process\n")))
      << err;
  ASSERT_EQ(r.failures, 1u) << r.summary;
  EXPECT_EQ(r.schedules_run, 1u);
  EXPECT_TRUE(std::regex_match(
      r.failure, std::regex("schedule #0 \\(seed 9\\) failed in a worker process \\(worker "
                            "process [0-9]+ ended with signal 9 \\(Killed\\)\\) but passed when "
                            "run again in this process: .*")))
      << r.failure;
  std::filesystem::remove_all(artifacts());
}

// A crash that repeats here ends this process as a single-process exploration would, after the
// line that names the schedule.
TEST(ExploreJobsDeathTest, ACrashThatRepeatsEndsThisProcessToo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        auto o = options("ExploreJobs.Crash", 2);
        o.policy = "random";  // the portfolio's pct would count choices in this process first
        o.seed = 3;
        (void)tendril::explore(o, [] { ::kill(::getpid(), SIGKILL); });
      },
      ::testing::KilledBySignal(SIGKILL),
      "tendril: schedule #0 \\(seed 3\\) of ExploreJobs.Crash: worker process [0-9]+ ended with "
      "signal 9 \\(Killed\\); running it again in this process");
}

// A Ctrl-C in one worker stops them all; the summary says how far the exploration got and where
// to resume (the first schedule not run).
TEST(ExploreJobs, ACtrlCInAWorkerStopsThemAll) {
  auto o = options("ExploreJobs.Interrupted", 2);
  o.schedules = 100000;
  o.seed = 40;
  o.policy = "random";  // the portfolio's pct would count choices in this process first
  int runs = 0;         // each worker counts its own
  const auto r = tendril::explore(o, [&runs] {
    if (++runs == 3) std::raise(SIGINT);
    tendril::sleep(0s);
  });
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(r.failures, 0u);
  EXPECT_EQ(runs, 0);  // the body ran in the workers only
  EXPECT_GE(r.schedules_run, 3u);
  EXPECT_LT(r.schedules_run, 100000u);
  const std::regex resume(
      "tendril: interrupted \\(Ctrl-C\\) after ([0-9]+) schedules; the next schedule is "
      "#([0-9]+): resume with TENDRIL_SEED=40 TENDRIL_FIRST_SCHEDULE=([0-9]+)\n");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.summary, m, resume)) << r.summary;
  EXPECT_EQ(m[1].str(), std::to_string(r.schedules_run));
  EXPECT_EQ(m[2].str(), m[3].str());
  EXPECT_LE(std::stoull(m[2].str()), r.schedules_run);
  struct sigaction now {};
  ASSERT_EQ(::sigaction(SIGINT, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

// A process with another thread is not forked: it explores alone, and says so when jobs were
// asked for explicitly.
TEST(ExploreJobs, AProcessWithThreadsExploresAlone) {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::thread other([&] {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return done; });
  });
  auto o = options("ExploreJobs.Threads", 2);
  o.schedules = 10;
  ::testing::internal::CaptureStderr();
  const auto r = tendril::explore(o, [] { tendril::sleep(0s); });
  const std::string err = ::testing::internal::GetCapturedStderr();
  {
    std::lock_guard lock(m);
    done = true;
  }
  cv.notify_one();
  other.join();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.jobs, 1u);
  EXPECT_EQ(r.schedules_run, 10u);
  EXPECT_NE(err.find("tendril: explore() runs its schedules in this process, not in 2: the "
                     "process has "),
            std::string::npos)
      << err;
}

// Bad values: too many jobs, or a TENDRIL_JOBS that is not a number.
TEST(ExploreJobs, BadValues) {
  auto o = options("ExploreJobs.Bad", 2000);
  try {
    (void)tendril::explore(o, [] {});
    FAIL() << "no UsageError";
  } catch (const tendril::UsageError& e) {
    EXPECT_STREQ(e.what(), "tendril::explore: ExploreOptions::jobs must be at most 1024, got 2000");
  }
  ::setenv("TENDRIL_JOBS", "two", 1);
  try {
    tendril::ExploreOptions e;
    e.from_env();
    FAIL() << "no UsageError";
  } catch (const tendril::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("TENDRIL_JOBS"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'two'"), std::string::npos) << e.what();
  }
  ::setenv("TENDRIL_JOBS", "3", 1);
  tendril::ExploreOptions e;
  e.from_env();
  EXPECT_EQ(e.jobs, 3u);
  ::unsetenv("TENDRIL_JOBS");
}

// A failure a worker found is reported even when a Ctrl-C reached this process meanwhile.
TEST(ExploreJobs, AFailureFoundIsNotLostToACtrlC) {
  auto o = options("ExploreJobs.FailureThenCtrlC", 2);
  o.schedules = 100000;
  o.seed = 12;
  o.policy = "random";
  // Shared by the workers (forked from here): exactly one of them presses Ctrl-C, once. A
  // second SIGINT would end this process, as a second Ctrl-C does.
  void* page = ::mmap(nullptr, sizeof(std::atomic<int>), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  auto* pressed = new (page) std::atomic<int>(0);
  int runs = 0;  // each worker counts its own
  const auto r = tendril::explore(o, [&runs, pressed] {
    tendril::sleep(0s);
    if (::getpid() != test_process && ++runs == 2 && pressed->exchange(1) == 0) {
      ::kill(test_process, SIGINT);  // the user presses Ctrl-C as the failure is found
      throw std::runtime_error("boom");
    }
  });
  ::munmap(page, sizeof(std::atomic<int>));
  EXPECT_FALSE(r.interrupted);
  ASSERT_EQ(r.failures, 1u) << r.summary;
  EXPECT_NE(r.failure.find("failed in a worker process (std::runtime_error: boom)"),
            std::string::npos)
      << r.failure;
  struct sigaction now {};
  ASSERT_EQ(::sigaction(SIGINT, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
  std::filesystem::remove_all(artifacts());
}
