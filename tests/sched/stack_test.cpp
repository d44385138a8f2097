// SPDX-License-Identifier: Apache-2.0
// Stack pool: reuse without remapping, dense mode, and clear errors at the mapping limit.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "tendril/sim.hpp"

using namespace std::chrono_literals;
using tendril::Ref;
using tendril::StackMode;
using tendril::StackOptions;
using tendril::StackPool;

// Freed stacks are reused: once one greenlet has run, spawning one at a time maps nothing more.
TEST(StackPool, WarmPoolDoesNotMapAgain) {
  tendril::SimHub hub;
  std::size_t mapped_after_first = 0;
  tendril::run(hub, [&] {
    tendril::spawn([] {})->join();
    mapped_after_first = hub.stacks().mapped_bytes();
    for (int i = 0; i < 100; ++i) tendril::spawn([] {})->join();
  });
  const auto& opts = hub.stacks().options();
  EXPECT_EQ(opts.guard_bytes, 64u * 1024);
  EXPECT_EQ(hub.stacks().mapped_bytes(), mapped_after_first);
  EXPECT_EQ(hub.stacks().live_stacks(), 0u);
}

namespace {
// spawn_alive() runs n greenlets alive at once on hub (each sleeps until all have started).
void spawn_alive(tendril::SimHub& hub, int n) {
  tendril::run(hub, [n] {
    std::vector<Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < n; ++i) gs.push_back(tendril::spawn([] { tendril::sleep(1ms); }));
    tendril::joinall(gs);
  });
}
}  // namespace

// Stacks outlive their hub: a hub made later with the same stack options takes the stacks the
// dead one left (a process-wide cache), so it maps nothing for as many greenlets; a hub with
// other options, or with cache_across_hubs off, maps its own. Sizes no other test uses, so that no
// earlier hub left stacks of these kinds.
TEST(StackPool, ALaterHubTakesTheStacksADeadOneLeft) {
  for (const StackMode mode : {StackMode::guarded, StackMode::dense}) {
    tendril::SimOptions options;
    options.stack.mode = mode;
    options.stack.size_bytes = mode == StackMode::guarded ? 88 * 1024 : 92 * 1024;
    std::size_t first_mapped = 0;
    {
      tendril::SimHub first(options);
      spawn_alive(first, 300);
      first_mapped = first.stacks().mapped_bytes();
    }
    EXPECT_GT(first_mapped, 300u * (88 + 64) * 1024) << static_cast<int>(mode);
    tendril::SimHub second(options);
    spawn_alive(second, 300);
    EXPECT_EQ(second.stacks().mapped_bytes(), 0u) << static_cast<int>(mode);
    tendril::SimOptions other = options;
    other.stack.size_bytes += 4096;
    tendril::SimHub third(other);
    spawn_alive(third, 1);
    EXPECT_GT(third.stacks().mapped_bytes(), 0u) << static_cast<int>(mode);
    // A hub that opts out maps its own, though the cache holds stacks of its kind.
    tendril::SimOptions own = options;
    own.stack.cache_across_hubs = false;
    tendril::SimHub fourth(own);
    spawn_alive(fourth, 1);
    EXPECT_GT(fourth.stacks().mapped_bytes(), 0u) << static_cast<int>(mode);
  }
}

namespace {
// kernel_has_guard_regions() says whether dense stacks get kernel guard regions here (the first
// stack of a pool finds out).
bool kernel_has_guard_regions() {
  StackPool probe(StackOptions{64 * 1024, StackMode::dense});
  auto s = probe.allocate();
  const bool guarded = probe.kernel_guarded();
  probe.deallocate(s);
  return guarded;
}
}  // namespace

// Dense mode carves stacks from slabs, each above a zone of guard_bytes. Without kernel guard
// regions, using the whole stack leaves the zone clean, and a single byte written anywhere in the
// page under the stack is an overflow.
TEST(StackPool, DenseModeCheckZone) {
  StackOptions options{64 * 1024, StackMode::dense, 16};
  options.kernel_guards = false;
  StackPool pool(options);
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  ASSERT_EQ(pool.zone_bytes(), 64u * 1024);
  auto a = pool.allocate();
  auto b = pool.allocate();
  EXPECT_FALSE(pool.kernel_guarded());
  EXPECT_TRUE(pool.checks_switches());
  EXPECT_EQ(static_cast<char*>(b.sp) - static_cast<char*>(a.sp), 2 * 64 * 1024);
  char* a_bottom = static_cast<char*>(a.sp) - a.size;
  std::memset(a_bottom, 0x5a, a.size);  // every byte of the stack itself: not an overflow
  EXPECT_FALSE(pool.overflowed(a));
  EXPECT_FALSE(pool.overflowed(b));
  for (std::size_t at : {std::size_t{0}, page / 2 + 3, page - 1}) {
    volatile char* byte = a_bottom - page + at;
    *byte = 1;  // an overflow's return address or local, anywhere in the zone
    EXPECT_TRUE(pool.overflowed(a)) << at;
    EXPECT_TRUE(pool.in_guard(a, const_cast<char*>(byte))) << at;
    *byte = 0;
    EXPECT_FALSE(pool.overflowed(a)) << at;
  }
  EXPECT_FALSE(pool.in_guard(a, a_bottom));
  EXPECT_TRUE(pool.in_guard(a, a_bottom - 64 * 1024));
  EXPECT_FALSE(pool.in_guard(a, a_bottom - 64 * 1024 - 1));
  pool.deallocate(a);
  pool.deallocate(b);
  EXPECT_EQ(pool.live_stacks(), 0u);
}

// With kernel guard regions nothing is checked at switches (a touch of the zone faults instead).
TEST(StackPool, DenseModeKernelGuards) {
  if (!kernel_has_guard_regions()) {
    GTEST_SKIP() << "this kernel has no MADV_GUARD_INSTALL (Linux 6.13+)";
  }
  StackPool pool(StackOptions{64 * 1024, StackMode::dense, 16});
  auto a = pool.allocate();
  EXPECT_TRUE(pool.kernel_guarded());
  EXPECT_FALSE(pool.checks_switches());
  EXPECT_FALSE(pool.overflowed(a));
  EXPECT_TRUE(pool.in_guard(a, static_cast<char*>(a.sp) - a.size - 1));
  pool.deallocate(a);
}

namespace {
// mappings() counts this process's kernel mappings (/proc/self/maps lines).
std::size_t mappings() {
  std::FILE* f = std::fopen("/proc/self/maps", "r");
  std::size_t n = 0;
  for (int c; f != nullptr && (c = std::fgetc(f)) != EOF;) n += c == '\n' ? 1 : 0;
  if (f != nullptr) std::fclose(f);
  return n;
}
}  // namespace

// Guarded stacks cost no kernel mapping each where the kernel has guard regions: 1,000 of them
// come from 9 slabs of 16 MiB (adjacent slabs may merge; a sanitizer's runtime adds a few of its
// own), and every region under a stack faults (in_guard, and the death tests below). Without them
// (kernel_guards = false) each PROT_NONE region splits its slab: about two mappings per stack.
TEST(StackPool, GuardedStacksNeedNoMappingEach) {
  for (const bool kernel_guards : {true, false}) {
    if (kernel_guards && !kernel_has_guard_regions()) continue;
    StackOptions options{64 * 1024, StackMode::guarded};
    options.kernel_guards = kernel_guards;
    options.guard_bytes = kernel_guards ? 68 * 1024 : 72 * 1024;  // kinds no other test uses
    StackPool pool(options);
    const std::size_t before = mappings();
    std::vector<boost::context::stack_context> stacks;
    for (int i = 0; i < 1000; ++i) stacks.push_back(pool.allocate());
    const std::size_t added = mappings() - before;
    EXPECT_EQ(pool.kernel_guarded(), kernel_guards);
    if (kernel_guards) {
      EXPECT_LE(added, 32u);
    } else {
      EXPECT_GE(added, 1990u);
    }
    for (auto& s : stacks) pool.deallocate(s);
  }
}

// Stacks are made ready and given back in batches with process_madvise() on this process. A child
// made by fork() (explore()'s workers) must advise its own memory, not its parent's: here a child
// gives back 64 stacks that the parent still uses (written before the fork); the child's copies
// are emptied, the parent's keep their bytes. (The kernel also refuses such advice for another
// process, so a stale pidfd would fall back to madvise() rather than harm the parent.)
TEST(StackPool, AForkedChildGivesBackItsOwnPages) {
  StackOptions options{64 * 1024, StackMode::guarded};
  options.pool_max_stacks = 0;      // every freed stack's pages go back (64 at a time)
  options.guard_bytes = 76 * 1024;  // a kind no other test uses
  StackPool pool(options);
  std::vector<boost::context::stack_context> stacks;
  for (int i = 0; i < 64; ++i) {
    stacks.push_back(pool.allocate());
    std::memset(static_cast<char*>(stacks.back().sp) - 4096, 0x5a, 4096);
  }
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    for (auto& s : stacks) pool.deallocate(s);  // the 64th gives all 64 back
    const bool gone = *(static_cast<char*>(stacks.front().sp) - 1) == 0;
    ::_exit(gone ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the child's pages were not given back";
  int intact = 0;
  for (auto& s : stacks) intact += *(static_cast<char*>(s.sp) - 1) == 0x5a ? 1 : 0;
  EXPECT_EQ(intact, 64);
  for (auto& s : stacks) pool.deallocate(s);
}

// Sizes are rounded up to whole pages with a 16 KiB minimum.
TEST(StackPool, SizeIsRoundedToPages) {
  StackPool pool(StackOptions{1000, StackMode::guarded, 4});
  EXPECT_EQ(pool.options().size_bytes, 16u * 1024);
  auto s = pool.allocate();
  EXPECT_EQ(s.size, 16u * 1024);
  pool.deallocate(s);
}

// Thousands of greenlets in dense mode, all alive at once, then all finished.
TEST(StackPool, DenseModeManyLiveGreenlets) {
#if defined(TENDRIL_TSAN)
  GTEST_SKIP() << "TSan keeps a context per live greenlet and allows 8128 in all; the optimised "
                  "and ASan builds run this test";
#endif
  tendril::SimOptions options;
  options.stack.mode = StackMode::dense;
  options.stack.size_bytes = 32 * 1024;
  tendril::SimHub hub(options);
  int done = 0;
  tendril::run(hub, [&] {
    std::vector<Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 20000; ++i)
      gs.push_back(tendril::spawn([&] {
        tendril::sleep(1s);
        ++done;
      }));
    tendril::sleep(500ms);
    EXPECT_EQ(hub.stacks().live_stacks(), 20001u);  // and main's
    tendril::joinall(gs);
  });
  EXPECT_EQ(done, 20000);
  EXPECT_EQ(hub.stacks().live_stacks(), 0u);
}

// In dense mode, a deep recursion that runs past the stack is caught (the process aborts with a
// message naming the greenlet) instead of silently corrupting a neighbour.
TEST(StackPoolDeathTest, DenseOverflowIsDetected) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        tendril::SimOptions options;
        options.stack.mode = StackMode::dense;
        options.stack.size_bytes = 16 * 1024;
        tendril::SimHub hub(options);
        tendril::run(hub, [] {
          auto g = tendril::spawn("deep", [] {
            // A frame bigger than the whole stack: its low end lies below the stack's bottom,
            // over the check zone (and into the neighbouring stack of the slab).
            volatile char big[17 * 1024];
            for (auto& c : big) c = 1;
            tendril::sleep(0s);
          });
          g->join();
        });
      },
      // Under ASan the write into the neighbouring stack's redzones is reported by ASan first.
      "stack overflow in greenlet #2 'deep'|AddressSanitizer");
}

namespace {

// recurse() never ends (the compiler cannot know that keep_going stays true): each frame keeps a
// little of its own, so it cannot become a loop.
// With limited_depth > 0 it returns after that many frames instead.
volatile bool keep_going = true;
volatile int limited_depth = 0;
// escape() makes the compiler assume the whole array is used: clang keeps only the bytes a
// function touches of a local array whose address does not escape (a `volatile char pad[256]`
// with one byte written became an 8-byte frame), and the overflows below would not be ones.
inline void escape(volatile char* p) { asm volatile("" : : "r"(p) : "memory"); }
[[gnu::noinline]] int recurse(int depth) {
  volatile char pad[256];
  escape(pad);
  pad[0] = static_cast<char>(depth);
  if (!keep_going || (limited_depth > 0 && depth >= limited_depth)) return pad[0];
  return recurse(depth + 1) + pad[0];
}

// big_frame() has one frame larger than a 64 KiB stack (the issue's reproducer: with a 4 KiB
// guard page and no stack-clash protection it wrote into the next greenlet's stack silently).
[[gnu::noinline]] void big_frame() {
  volatile char big[72 * 1024];
  escape(big);
  big[0] = 1;
  big[sizeof big - 1] = 2;
}

// big_frame_filled() fills a frame larger than a 64 KiB stack, through the page under it.
[[gnu::noinline]] void big_frame_filled() {
  volatile char big[72 * 1024];
  for (auto& c : big) c = 1;
}

// recurse_and_return() goes 400 frames of >= 256 bytes deep (past a 64 KiB stack), comes back
// and only then switches out.
void recurse_and_return() {
  limited_depth = 400;
  (void)recurse(0);
  tendril::sleep(0s);
}

void recurse_forever() {
  limited_depth = 0;
  (void)recurse(0);
}

// dense_overflow() runs body in greenlet #3 'deep' on 64 KiB dense stacks, with the stack of
// greenlet #2 'victim' right under it; it prints a line if nothing stopped the process.
void dense_overflow(bool kernel_guards, void (*body)()) {
  tendril::SimOptions options;
  options.stack.size_bytes = 64 * 1024;
  options.stack.mode = StackMode::dense;
  options.stack.kernel_guards = kernel_guards;
  tendril::SimHub hub(options);
  tendril::run(hub, [body] {
    auto victim = tendril::spawn("victim", [] { tendril::sleep(1s); });
    tendril::spawn("deep", body)->join();
    victim->join();
    std::fprintf(stderr, "no overflow detected\n");
  });
}

}  // namespace

// In guarded mode an overflow hits the guard region and faults at once; the fault handler names
// the greenlet, whatever the shape of the overflow: unbounded recursion, or one frame larger
// than the stack (probed page by page under -fstack-clash-protection, and caught by the 64 KiB
// guard region even without it). Under ASan, its own report follows tendril's line.
TEST(StackPoolDeathTest, GuardedOverflowNamesTheGreenlet) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto overflow = [](void (*body)(), bool kernel_guards = true) {
    tendril::SimOptions options;
    options.stack.size_bytes = 64 * 1024;
    options.stack.kernel_guards = kernel_guards;
    tendril::SimHub hub(options);
    tendril::run(hub, [body] {
      auto victim = tendril::spawn("victim", [] { tendril::sleep(1s); });
      tendril::spawn("deep", body)->join();
      victim->join();
    });
  };
  EXPECT_DEATH(overflow([] { (void)recurse(0); }),
               "tendril: stack overflow in greenlet #3 'deep' \\(its stack is 65536 bytes: raise "
               "StackOptions::size_bytes, or move large buffers off the stack\\)");
  EXPECT_DEATH(overflow(big_frame), "tendril: stack overflow in greenlet #3 'deep'");
  // The same with PROT_NONE regions (kernels before 6.13).
  EXPECT_DEATH(overflow([] { (void)recurse(0); }, false),
               "tendril: stack overflow in greenlet #3 'deep' \\(its stack is 65536 bytes");
  EXPECT_DEATH(overflow(big_frame, false), "tendril: stack overflow in greenlet #3 'deep'");
}

// In dense mode the issue's shapes are caught too, before the neighbour they overwrote runs
// again. With the kernel's guard regions (Linux 6.13+) the zone under each stack faults on any
// touch, so every shape is named by the fault handler at once: a recursion of partly written
// 256-byte frames that returns before switching out (it used to step over the 64-byte canary),
// a frame larger than the stack (its stack-clash probes fault in the zone), and a recursion that
// never returns.
TEST(StackPoolDeathTest, DenseOverflowWithKernelGuardsNamesTheGreenlet) {
  if (!kernel_has_guard_regions()) {
    GTEST_SKIP() << "this kernel has no MADV_GUARD_INSTALL (Linux 6.13+); the zero-page "
                    "fallback is tested by DenseOverflowWithoutKernelGuardsNamesTheGreenlet";
  }
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string named =
      "tendril: stack overflow in greenlet #3 'deep' \\(its stack is 65536 bytes: raise "
      "StackOptions::size_bytes, or move large buffers off the stack\\)";
  EXPECT_DEATH(dense_overflow(true, recurse_and_return), named);
  EXPECT_DEATH(dense_overflow(true, big_frame), named);
  EXPECT_DEATH(dense_overflow(true, recurse_forever), named);
}

// Without guard regions (older kernels, or StackOptions::kernel_guards = false) the page under
// each stack must stay zero: checked at every switch out, it catches the recursion that returns
// and a frame that writes through it; a recursion that never returns faults somewhere below, and
// the fault handler sees the stack pointer below the greenlet's stack. What this fallback cannot
// see is one frame more than a page too large that writes nothing in that page (see StackMode).
TEST(StackPoolDeathTest, DenseOverflowWithoutKernelGuardsNamesTheGreenlet) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // Under ASan the writes into the neighbouring stack's redzones are reported by ASan first.
#if defined(TENDRIL_ASAN)
  const std::string or_asan = "|AddressSanitizer";
#else
  const std::string or_asan;
#endif
  const std::string checked =
      "stack overflow in greenlet #3 'deep' \\(dense stacks of 65536 bytes have no guard "
      "page; raise StackOptions::size_bytes\\)" +
      or_asan;
  EXPECT_DEATH(dense_overflow(false, recurse_and_return), checked);
  EXPECT_DEATH(dense_overflow(false, big_frame_filled), checked);
  EXPECT_DEATH(
      dense_overflow(false, recurse_forever),
      "tendril: stack overflow in greenlet #3 'deep' \\(its stack is 65536 bytes" + or_asan);
}

namespace {

// read_max_map_count() is the kernel's limit on a process's mappings, or -1.
long read_max_map_count() {
  std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r");
  if (f == nullptr) return -1;
  long value = -1;
  if (std::fscanf(f, "%ld", &value) != 1) value = -1;
  std::fclose(f);
  return value;
}

}  // namespace

// Past the kernel's mapping limit, guarded stacks fail with an error that names the limit and the
// way out (dense mode); the greenlet fails, the hub goes on, and nothing is silently unguarded.
TEST(StackPool, GuardedModeLimitGivesClearError) {
#if defined(TENDRIL_ASAN) || defined(TENDRIL_TSAN)
  GTEST_SKIP() << "under a sanitizer its own runtime runs out of mappings first and aborts; the "
                  "optimised build runs this test";
#endif
  const long max_map_count = read_max_map_count();
  ASSERT_GT(max_map_count, 0) << "cannot read /proc/sys/vm/max_map_count";
  if (max_map_count > 70000) {
    GTEST_SKIP() << "vm.max_map_count is " << max_map_count
                 << "; this test needs the default 65530 to reach the limit quickly";
  }
  tendril::SimOptions options;
  options.stack.size_bytes = 16 * 1024;
  options.stack.kernel_guards = false;  // PROT_NONE regions: two mappings per stack
  tendril::SimHub hub(options);
  std::string first_error;
  std::size_t failures = 0;
  hub.set_error_handler([&](tendril::Greenlet&, std::exception_ptr e) {
    if (failures++ == 0) first_error = tendril::describe_exception(e);
  });
  tendril::run(hub, [&] {
    std::vector<Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 40000; ++i) gs.push_back(tendril::spawn([] { tendril::sleep(1s); }));
    tendril::sleep(0s);
    EXPECT_GT(failures, 0u);
    std::size_t failed = 0;
    for (auto& g : gs) failed += g->dead() && !g->successful() ? 1 : 0;
    EXPECT_EQ(failed, failures);
    tendril::killall(gs);
  });
  EXPECT_NE(first_error.find("vm.max_map_count"), std::string::npos) << first_error;
  EXPECT_NE(first_error.find("StackMode::dense"), std::string::npos) << first_error;
  EXPECT_EQ(hub.live_greenlets(), 0u);
}

// The default report says the stack limit once, with what to do, and counts the other refused
// spawns in one line at the end of the run: not one line per greenlet (issue 19).
TEST(StackPool, TheStackLimitIsReportedOnce) {
#if defined(TENDRIL_ASAN) || defined(TENDRIL_TSAN)
  GTEST_SKIP() << "under a sanitizer its own runtime runs out of mappings first and aborts; the "
                  "optimised build runs this test";
#endif
  const long max_map_count = read_max_map_count();
  ASSERT_GT(max_map_count, 0) << "cannot read /proc/sys/vm/max_map_count";
  if (max_map_count > 70000) {
    GTEST_SKIP() << "vm.max_map_count is " << max_map_count
                 << "; this test needs the default 65530 to reach the limit quickly";
  }
  tendril::SimOptions options;
  options.stack.size_bytes = 16 * 1024;
  options.stack.kernel_guards = false;  // PROT_NONE regions: two mappings per stack
  tendril::SimHub hub(options);
  std::size_t refused = 0;
  ::testing::internal::CaptureStderr();
  tendril::run(hub, [&] {
    std::vector<Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 40000; ++i) gs.push_back(tendril::spawn([] { tendril::sleep(1s); }));
    tendril::sleep(0s);
    for (auto& g : gs) refused += g->dead() && !g->successful() ? 1 : 0;
    tendril::killall(gs);
  });
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_GT(refused, 1u);
  const std::regex expected(
      "tendril: greenlet #[0-9]+ failed with tendril::StackLimitError: tendril: cannot protect "
      "the guard page of greenlet stack #[0-9]+ \\(the kernel's vm.max_map_count limit allows "
      "about 32k guarded stacks without kernel guard regions \\(Linux 6.13\\+\\); use "
      "StackMode::dense for more greenlets\\): Cannot allocate memory\n"
      "tendril: and " +
      std::to_string(refused - 1) +
      " more greenlets could not get a stack either \\(the limit greenlet #[0-9]+ met, above, "
      "is reported once\\)\n");
  EXPECT_TRUE(std::regex_match(err, expected)) << err;
}

#if defined(TENDRIL_ASAN)
#include <sanitizer/asan_interface.h>
#include <sys/mman.h>

// Under ASan, a stack whose pages go back to the kernel leaves no poison behind: a greenlet's
// last frames can leave redzones poisoned on a stack it never returns through, and the next
// greenlet on it would read them as a stack-buffer-overflow.
TEST(StackPool, ReleasedStacksLeaveNoPoisonUnderAsan) {
  StackOptions options{64 * 1024, StackMode::guarded};
  options.pool_max_stacks = 0;  // a freed stack's pages go back at once
  StackPool pool(options);
  auto s = pool.allocate();
  char* bottom = static_cast<char*>(s.sp) - s.size;
  __asan_poison_memory_region(bottom + 4096, 64);  // as a dead frame's redzone would be
  ASSERT_NE(__asan_region_is_poisoned(bottom, s.size), nullptr);
  pool.deallocate(s);
  EXPECT_EQ(__asan_region_is_poisoned(bottom, s.size), nullptr);
  auto again = pool.allocate();  // the same stack, taken back
  EXPECT_EQ(again.sp, s.sp);
  pool.deallocate(again);
}
#endif
