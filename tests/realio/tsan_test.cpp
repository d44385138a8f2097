// SPDX-License-Identifier: Apache-2.0
// tsan_test.cpp: ThreadSanitizer sees each greenlet as a fiber of its own (built only with
// TENDRIL_SANITIZE=thread; tests/run.sh runs it). A data race between a greenlet and another
// thread is reported with the racing greenlet's own stack, never with the frames of the hub and
// of other greenlets that ran on the same thread (what TSan shows when switches are not
// annotated: one shadow stack with every greenlet's frames piled up).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "tendril/realio.hpp"

using namespace std::chrono_literals;

namespace {

int shared = 0;
std::atomic<bool> thread_wrote{false};

[[gnu::noinline]] void bystander_body() { tendril::sleep(10s); }

[[gnu::noinline]] void racy_write(int* p) {
  *p = 2;  // races with the thread's write: no lock, no join before it
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

// The scenario, run in a child process: it ends in TSan's report (halt_on_error=1).
void race_between_a_greenlet_and_a_thread() {
  tendril::LibevHub hub;
  tendril::run(hub, [] {
    auto bystander = tendril::spawn("bystander", [] { bystander_body(); });
    tendril::sleep(0s);  // the bystander is now parked inside bystander_body()
    std::thread writer([] {
      shared = 1;
      thread_wrote.store(true, std::memory_order_relaxed);  // relaxed: no happens-before
    });
    auto racer = tendril::spawn("racer", [] {
      while (!thread_wrote.load(std::memory_order_relaxed)) std::this_thread::yield();
      racy_write(&shared);
    });
    racer->join();
    writer.join();
    bystander->kill();
  });
}

}  // namespace

TEST(Tsan, RaceIsReportedWithTheRacingGreenletsOwnStack) {
  if (std::getenv("TENDRIL_TSAN_CHILD") != nullptr) {
    race_between_a_greenlet_and_a_thread();
    std::puts("no race reported");
    return;
  }
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string command = "TENDRIL_TSAN_CHILD=1 TSAN_OPTIONS=halt_on_error=1 '" + self +
                              "' --gtest_filter=Tsan.RaceIsReportedWithTheRacingGreenletsOwnStack "
                              "2>&1";
  FILE* child = ::popen(command.c_str(), "r");
  ASSERT_NE(child, nullptr);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, child)) > 0;) out.append(buf, n);
  const int status = ::pclose(child);
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("WARNING: ThreadSanitizer: data race"), std::string::npos) << out;
  EXPECT_NE(out.find("racy_write"), std::string::npos) << out;
  EXPECT_EQ(out.find("no race reported"), std::string::npos) << out;
  // The racer's access is reported on a fiber of its own, with a stack that ends at that
  // fiber's entry: one Greenlet::entry_point, and none of the hub loop or main's frames under it
  // (unannotated, TSan says "by main thread" and piles up every greenlet started so far).
  const std::size_t from = out.find("Write of size 4");
  const std::size_t to = out.find("Previous write of size 4");
  ASSERT_NE(from, std::string::npos) << out;
  ASSERT_NE(to, std::string::npos) << out;
  const std::string racer = out.substr(from, to - from);
  EXPECT_EQ(racer.find("by main thread"), std::string::npos) << racer;
  const std::size_t entry = racer.find("Greenlet::entry_point");
  ASSERT_NE(entry, std::string::npos) << racer;
  EXPECT_EQ(racer.find("Greenlet::entry_point", entry + 1), std::string::npos) << racer;
  EXPECT_EQ(racer.find("run_loop"), std::string::npos) << racer;
  EXPECT_EQ(out.find("bystander_body"), std::string::npos) << out;
}
