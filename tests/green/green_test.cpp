// SPDX-License-Identifier: Apache-2.0
// Monkey patching (tendril::green): POSIX sleeps and clocks called from greenlets, in a test
// linked with the interposer. Orders and virtual times are exact; the real clock is read through
// the raw system call, which nothing interposes.
#include <gtest/gtest.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "tendril/explore.hpp"
#include "tendril/realio.hpp"
#include "tendril/sim.hpp"

namespace {

// The real monotonic clock, past any interposer, in seconds.
double real_seconds() {
  timespec t{};
  ::syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

constexpr long long epoch_2000 = 946'684'800;  // CLOCK_REALTIME at virtual time 0

}  // namespace

// POSIX sleep(1) in a greenlet on a SimHub advances virtual time by exactly 1 s and sleeps no
// wall time; other greenlets run meanwhile, in virtual-time order.
TEST(Green, PosixSleepsAreVirtualOnSimHub) {
  tendril::SimHub hub;
  std::vector<std::string> log;
  const double wall = real_seconds();
  tendril::run(hub, [&] {
    auto a = tendril::spawn([&] {
      ::sleep(1);
      log.push_back("a at " + std::to_string(hub.now_ns()));
    });
    auto b = tendril::spawn([&] {
      ::usleep(250'000);
      log.push_back("b at " + std::to_string(hub.now_ns()));
      const timespec half{0, 500'000'000};
      ASSERT_EQ(::nanosleep(&half, nullptr), 0);
      log.push_back("b at " + std::to_string(hub.now_ns()));
    });
    tendril::joinall({a, b});
  });
  EXPECT_EQ(log, (std::vector<std::string>{"b at 250000000", "b at 750000000", "a at 1000000000"}));
  EXPECT_EQ(hub.now_ns(), 1'000'000'000);
  EXPECT_LT(real_seconds() - wall, 0.5) << "a POSIX sleep slept for real";
}

// The clocks read virtual time on a SimHub: the monotonic ones from 0, the real-time ones from
// 2000-01-01 (so std::chrono's clocks do too); outside run() they are the machine's.
TEST(Green, ClocksReadVirtualTimeOnSimHub) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    const auto steady0 = std::chrono::steady_clock::now();
    const auto system0 = std::chrono::system_clock::now();
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(system0.time_since_epoch()).count(),
              epoch_2000);
    EXPECT_EQ(::time(nullptr), epoch_2000);
    ::sleep(2);
    ::usleep(1500);
    EXPECT_EQ(std::chrono::steady_clock::now() - steady0, std::chrono::nanoseconds(2'001'500'000));
    EXPECT_EQ(std::chrono::system_clock::now() - system0, std::chrono::nanoseconds(2'001'500'000));
    timespec mono{};
    ASSERT_EQ(::clock_gettime(CLOCK_MONOTONIC, &mono), 0);
    EXPECT_EQ(mono.tv_sec, 2);
    EXPECT_EQ(mono.tv_nsec, 1'500'000);
    timeval tv{};
    ASSERT_EQ(::gettimeofday(&tv, nullptr), 0);
    EXPECT_EQ(tv.tv_sec, epoch_2000 + 2);
    EXPECT_EQ(tv.tv_usec, 1500);
    time_t t = 0;
    EXPECT_EQ(::time(&t), epoch_2000 + 2);
    EXPECT_EQ(t, epoch_2000 + 2);
  });
  EXPECT_GT(::time(nullptr), 1'700'000'000) << "outside run() the clock is the machine's";
}

// clock_nanosleep: relative and absolute (TIMER_ABSTIME, against the virtual clock); bad
// arguments give libc's errors (EINVAL: clock_nanosleep returns it, nanosleep sets errno).
TEST(Green, ClockNanosleepAndBadArguments) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    const timespec rel{0, 100'000'000};
    EXPECT_EQ(::clock_nanosleep(CLOCK_MONOTONIC, 0, &rel, nullptr), 0);
    EXPECT_EQ(hub.now_ns(), 100'000'000);
    const timespec at{3, 0};
    EXPECT_EQ(::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr), 0);
    EXPECT_EQ(hub.now_ns(), 3'000'000'000);
    EXPECT_EQ(::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &rel, nullptr), 0);  // past
    EXPECT_EQ(hub.now_ns(), 3'000'000'000);
    const timespec bad{0, 1'000'000'000};
    EXPECT_EQ(::clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, nullptr), EINVAL);
    errno = 0;
    EXPECT_EQ(::nanosleep(&bad, nullptr), -1);
    EXPECT_EQ(errno, EINVAL);
    const timespec negative{-1, 0};
    errno = 0;
    EXPECT_EQ(::nanosleep(&negative, nullptr), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(hub.now_ns(), 3'000'000'000);
  });
}

// A greenlet killed while it sleeps in POSIX sleep unwinds out of it: its locals are destroyed
// and the killer goes on.
TEST(Green, AKillUnwindsOutOfAPosixSleep) {
  tendril::SimHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    struct Guard {
      std::vector<std::string>& log;
      ~Guard() { log.push_back("sleeper's locals destroyed"); }
    };
    auto sleeper = tendril::spawn([&] {
      Guard guard{log};
      ::sleep(100);
      log.push_back("woke (wrong)");
    });
    ::usleep(1000);
    sleeper->kill();
    log.push_back("killed at " + std::to_string(hub.now_ns()));
  });
  EXPECT_EQ(log, (std::vector<std::string>{"sleeper's locals destroyed", "killed at 1000000"}));
}

// On LibevHub a POSIX sleep waits on the hub: another greenlet runs while the first sleeps.
TEST(Green, PosixSleepIsCooperativeOnLibevHub) {
  tendril::LibevHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    auto a = tendril::spawn([&] {
      log.push_back("a sleeps");
      ::usleep(20'000);
      log.push_back("a wakes");
    });
    auto b = tendril::spawn([&] { log.push_back("b runs while a sleeps"); });
    tendril::joinall({a, b});
  });
  EXPECT_EQ(log, (std::vector<std::string>{"a sleeps", "b runs while a sleeps", "a wakes"}));
}

// Off any greenlet (another thread, or no hub) the calls are libc's: a real sleep.
TEST(Green, OffAGreenletTheCallsAreLibcs) {
  const double before = real_seconds();
  ::usleep(20'000);
  EXPECT_GE(real_seconds() - before, 0.019);
  timespec mono{};
  ASSERT_EQ(::clock_gettime(CLOCK_MONOTONIC, &mono), 0);
  EXPECT_NEAR(static_cast<double>(mono.tv_sec) + static_cast<double>(mono.tv_nsec) / 1e9,
              real_seconds(), 1.0);
}

// Explored schedules of a body in blocking style replay exactly: nothing reads the wall clock.
TEST(Green, ExploredBlockingStyleCodeIsDeterministic) {
  tendril::ExploreOptions o;
  o.test = "Green.Explored";
  o.policy = "random";
  o.schedules = 200;
  o.jobs = 1;
  o.artifacts = ::testing::TempDir() + "green-artifacts";
  o.progress = "off";
  const auto body = [] {
    int counter = 0;
    auto a = tendril::spawn([&counter] {
      const int v = counter;
      ::usleep(1000);  // read, sleep, write: a lost update in POSIX style
      counter = v + 1;
    });
    auto b = tendril::spawn([&counter] {
      ::usleep(1000);  // due at the same instant as a's: the policy picks which fires first
      ++counter;
    });
    tendril::joinall({a, b});
    if (counter != 2) throw std::logic_error("lost update");
    if (std::chrono::steady_clock::now().time_since_epoch() != std::chrono::milliseconds(1)) {
      throw std::logic_error("the clock is not virtual");
    }
  };
  const auto r = tendril::explore(o, body);
  ASSERT_FALSE(r.ok()) << r.summary;
  EXPECT_EQ(r.failure, "std::logic_error: lost update");
  o.replay = r.schedule_file;
  const auto again = tendril::explore(o, body);
  EXPECT_EQ(again.failure, r.failure);
}

// getrandom and getentropy on a SimHub: bytes from one recorded random choice per request, so a
// run gives the same bytes every time (FIFO: each request its own), a policy's seed varies them,
// and a replay reproduces them. Off the hub they are the kernel's.
TEST(Green, RandomBytesAreTheSimulationsOnSimHub) {
  using Bytes = std::array<unsigned char, 24>;
  const auto draw_two = [](tendril::SimHub& hub) {
    std::array<Bytes, 2> out{};
    tendril::run(hub, [&] {
      EXPECT_EQ(::getrandom(out[0].data(), out[0].size(), 0), 24);
      EXPECT_EQ(::getentropy(out[1].data(), out[1].size()), 0);
    });
    return out;
  };
  tendril::SimHub fifo;
  const auto a = draw_two(fifo);
  EXPECT_NE(a[0], a[1]);  // two requests, two streams
  fifo.reset(std::make_unique<tendril::Fifo>());
  EXPECT_EQ(draw_two(fifo), a);  // the same run, the same bytes

  auto recorder = std::make_unique<tendril::RecordingChooser>(std::make_unique<tendril::Random>(7));
  auto* rec = recorder.get();
  tendril::SimHub seeded(std::move(recorder));
  const auto b = draw_two(seeded);
  EXPECT_NE(b[0], a[0]);  // the policy's draw varies them
  const tendril::Schedule s = rec->schedule("Green.Random", 7);
  ASSERT_EQ(s.choices.size(), 2u);
  EXPECT_EQ(s.choices[0].kind, tendril::ChoiceKind::random);
  EXPECT_EQ(s.choices[0].n, 4294967295u);
  tendril::SimHub replay(std::make_unique<tendril::ReplayChooser>(s));
  EXPECT_EQ(draw_two(replay), b);  // and a replay reproduces them

  tendril::SimHub other(std::make_unique<tendril::Random>(8));
  EXPECT_NE(draw_two(other)[0], b[0]);

  std::array<unsigned char, 257> big{};
  errno = 0;
  EXPECT_EQ(::getentropy(big.data(), big.size()), -1);  // libc's limit, on the hub or not
  EXPECT_EQ(errno, EIO);
  Bytes real{};
  EXPECT_EQ(::getrandom(real.data(), real.size(), 0), 24);  // off the hub: the kernel's
}
