// SPDX-License-Identifier: Apache-2.0
// stack.cpp: the greenlet stack pool.
#include "tendril/sched/stack.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>

#include "tendril/sched/errors.hpp"
#if defined(TENDRIL_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace tendril {
namespace detail {
void install_overflow_handler();  // overflow.cpp
}  // namespace detail
namespace {

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// Linux 6.13's lightweight guard regions (the value is the kernel's ABI; Debian 12's headers
// predate it).
constexpr int madv_guard_install = 102;

// Stacks are carved from slabs this large, so 1M greenlets need a few thousand mappings, which
// the kernel merges anyway because they are adjacent and alike.
constexpr std::size_t slab_target_bytes = 16u << 20;

// madvise(MADV_POPULATE_WRITE) (Linux 5.14): faults pages in, writable, without touching them.
constexpr int madv_populate_write = 23;

// Stacks are made ready (guard region, first page) this many at a time, and freed stacks beyond
// the pool's size give their pages back this many at a time: a few system calls per batch.
constexpr std::size_t batch_stacks = 64;

// Whether the kernel has guard regions, found out once per process by the first stack carved:
// 0 not known yet, 1 yes, 2 no.
std::atomic<int> kernel_guard_regions{0};

// self_pidfd() is a pidfd of this process for process_madvise(), or -1. It is opened again in a
// child after fork() (the inherited one names the parent, whose memory the child must not advise).
std::mutex pidfd_mutex;
int pidfd = -1;
pid_t pidfd_pid = 0;
int self_pidfd() noexcept {
  std::lock_guard<std::mutex> lock(pidfd_mutex);
  const pid_t pid = ::getpid();
  if (pidfd_pid != pid) {
    if (pidfd >= 0) ::close(pidfd);
    pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    pidfd_pid = pid;
  }
  return pidfd;
}

// advise_all() applies advice to every range with as few system calls as the kernel allows: one
// process_madvise() on this process (Linux 6.13+ takes any advice from a process for itself),
// else one madvise() per range. Returns how many ranges, from the first, were advised; when not
// all were, errno says why the next one was not.
std::size_t advise_all(const iovec* ranges, std::size_t n, int advice) noexcept {
  std::size_t done = 0;
  if (n > 1) {
    const int fd = self_pidfd();
    const long advised = fd < 0 ? -1 : ::syscall(SYS_process_madvise, fd, ranges, n, advice, 0u);
    if (advised > 0) {
      auto left = static_cast<std::size_t>(advised);
      while (done < n && left >= ranges[done].iov_len) left -= ranges[done++].iov_len;
      if (done == n) return n;
    }
  }
  for (; done < n; ++done) {
    if (::madvise(ranges[done].iov_base, ranges[done].iov_len, advice) != 0) return done;
  }
  return n;
}

// unmap() returns addresses to the kernel. Under ASan their shadow is cleared first: a greenlet's
// last frames can leave redzones poisoned on a stack it never returns through, and a later
// mapping at the same addresses (a library loaded by dlopen, say) would read as a
// stack-buffer-overflow.
void unmap(void* base, std::size_t bytes) noexcept {
#if defined(TENDRIL_ASAN)
  __asan_unpoison_memory_region(base, bytes);
#endif
  ::munmap(base, bytes);
}

// unpoison() clears a free stack's ASan shadow: a greenlet's last frames can leave redzones
// poisoned on a stack it never returns through, which the next greenlet on it would trip over.
void unpoison([[maybe_unused]] const boost::context::stack_context& sctx) noexcept {
#if defined(TENDRIL_ASAN)
  __asan_unpoison_memory_region(static_cast<char*>(sctx.sp) - sctx.size, sctx.size);
#endif
}

// release_pages() gives free stacks' memory back to the kernel at once (MADV_DONTNEED: the
// process's resident size drops, which MADV_FREE would leave to memory pressure), keeping their
// addresses; in one system call where the kernel allows it.
void release_pages(const boost::context::stack_context* stacks, std::size_t n) noexcept {
  iovec ranges[batch_stacks];
  while (n > 0) {
    const std::size_t k = std::min(n, batch_stacks);
    for (std::size_t i = 0; i < k; ++i) {
      unpoison(stacks[i]);
      ranges[i] = {static_cast<char*>(stacks[i].sp) - stacks[i].size, stacks[i].size};
    }
    advise_all(ranges, k, MADV_DONTNEED);  // a stack it could not release stays as it was
    stacks += k;
    n -= k;
  }
}

// The process-wide cache of stacks whose pool died: a hub made later, anywhere in the process,
// with the same stack options takes them (issue 19: a new hub, or a test's next hub, spawns
// warm). Slabs are never unmapped: their addresses move from pool to cache to pool.
struct CachedStacks {
  StackMode mode;
  std::size_t size_bytes;
  std::size_t guard_bytes;
  bool kernel_guards;
  std::vector<StackPool::Slab> slabs;
  std::size_t slab_next;  // stacks already carved from slabs.back()
  std::size_t prepared;   // stacks of slabs.back() made ready (see StackPool::carve)
  std::vector<boost::context::stack_context> hot;
  std::vector<boost::context::stack_context> released;
  std::size_t mapped_bytes;
};
std::mutex cache_mutex;
// Leaked on purpose: pools may die during static destruction, after a static vector would have.
std::vector<CachedStacks>& cache() {
  static auto* entries = new std::vector<CachedStacks>();
  return *entries;
}

bool same_kind(const CachedStacks& c, const StackOptions& o) {
  return o.cache_across_hubs && c.mode == o.mode && c.size_bytes == o.size_bytes &&
         c.guard_bytes == o.guard_bytes && c.kernel_guards == o.kernel_guards;
}

}  // namespace

StackPool::StackPool(const StackOptions& options)
    : options_(options), page_bytes_(static_cast<std::size_t>(::sysconf(_SC_PAGESIZE))) {
  options_.size_bytes =
      round_up(std::max<std::size_t>(options_.size_bytes, 16 * 1024), page_bytes_);
  guard_bytes_ = round_up(std::max<std::size_t>(options_.guard_bytes, page_bytes_), page_bytes_);
  options_.guard_bytes = guard_bytes_;
  kernel_guarded_ = options_.kernel_guards && kernel_guard_regions.load() == 1;
  detail::install_overflow_handler();
  if (!options_.cache_across_hubs) return;
  // Take the stacks a dead pool of the same kind left.
  std::lock_guard<std::mutex> lock(cache_mutex);
  auto& entries = cache();
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (!same_kind(*it, options_)) continue;
    slabs_ = std::move(it->slabs);
    slab_next_ = it->slab_next;
    prepared_ = it->prepared;
    free_ = std::move(it->hot);
    released_ = std::move(it->released);
    adopted_bytes_ = it->mapped_bytes;
    entries.erase(it);
    break;
  }
}

StackPool::~StackPool() {
  if (live_ != 0) {
    // Stacks still in use (greenlets leaked past their hub): leave everything mapped.
    return;
  }
  if (!options_.cache_across_hubs) {
    for (auto& slab : slabs_) unmap(slab.base, slab.bytes);
    return;
  }
  release_pending();
  // Hand every stack to the cache, merged with what another dead pool of the same kind left; at
  // most pool_max_stacks of them keep their pages.
  std::lock_guard<std::mutex> lock(cache_mutex);
  auto& entries = cache();
  auto it = std::find_if(entries.begin(), entries.end(),
                         [&](const CachedStacks& c) { return same_kind(c, options_); });
  if (it == entries.end()) {
    entries.push_back(CachedStacks{options_.mode, options_.size_bytes, guard_bytes_,
                                   options_.kernel_guards, std::move(slabs_), slab_next_, prepared_,
                                   std::move(free_), std::move(released_),
                                   adopted_bytes_ + mapped_bytes_});
    return;
  }
  // The entry keeps carving its own last slab; the uncarved rest of this pool's last slab is
  // left unused (address space only).
  CachedStacks& c = *it;
  c.slabs.insert(c.slabs.begin(), slabs_.begin(), slabs_.end());
  c.hot.insert(c.hot.end(), free_.begin(), free_.end());
  c.released.insert(c.released.end(), released_.begin(), released_.end());
  if (c.hot.size() > options_.pool_max_stacks) {
    const std::size_t extra = c.hot.size() - options_.pool_max_stacks;
    release_pages(c.hot.data() + options_.pool_max_stacks, extra);
    c.released.insert(c.released.end(), c.hot.end() - static_cast<std::ptrdiff_t>(extra),
                      c.hot.end());
    c.hot.resize(options_.pool_max_stacks);
  }
  c.mapped_bytes += adopted_bytes_ + mapped_bytes_;
}

boost::context::stack_context StackPool::allocate() {
  boost::context::stack_context sctx;
  if (!free_.empty()) {
    sctx = free_.back();
    free_.pop_back();
  } else if (!released_.empty()) {
    if (pending_ == 0 && populated_ == 0) populate_released();
    sctx = released_.back();
    released_.pop_back();
    if (pending_ > 0) {
      --pending_;  // it still had its pages
    } else if (populated_ > 0) {
      --populated_;
    }
  } else {
    sctx = carve();
  }
  ++live_;
  return sctx;
}

void StackPool::deallocate(boost::context::stack_context& sctx) noexcept {
  --live_;
  if (free_.size() < options_.pool_max_stacks) {
    free_.push_back(sctx);
    return;
  }
  // The stack stays in its slab, its guard region or zone with it; its pages go back to the
  // kernel (the zone under it was never written, or the process has aborted), batch_stacks at a
  // time: until then it is the newest of released_'s last pending_ entries.
  unpoison(sctx);
  released_.push_back(sctx);
  if (++pending_ == batch_stacks) release_pending();
}

void StackPool::release_pending() noexcept {
  release_pages(released_.data() + (released_.size() - pending_), pending_);
  pending_ = 0;
  populated_ = 0;  // those now lie under the stacks just released: forgotten (they keep pages)
}

void StackPool::populate_released() noexcept {
  // The first pages of the next stacks allocate() takes, in one system call rather than a page
  // fault each (they gave their pages back when freed).
  iovec tops[batch_stacks];
  const std::size_t n = std::min(batch_stacks, released_.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto& s = released_[released_.size() - 1 - i];
    tops[i] = {static_cast<char*>(s.sp) - page_bytes_, page_bytes_};
  }
  advise_all(tops, n, madv_populate_write);  // else they fault in when first written
  populated_ = n;
}

namespace {

// or_words() ORs `bytes` (a multiple of 256) from an aligned zone, 256 bytes per step with four
// independent accumulators, so that the compiler emits wide vector loads.
[[gnu::always_inline]] inline bool or_words(const std::uint64_t* zone, std::size_t bytes) noexcept {
  using V = std::uint64_t __attribute__((vector_size(32)));
  const auto* v = reinterpret_cast<const V*>(zone);
  V a{}, b{}, c{}, d{};
  for (std::size_t i = 0; i < bytes / sizeof(V); i += 8) {
    a |= v[i] | v[i + 4];
    b |= v[i + 1] | v[i + 5];
    c |= v[i + 2] | v[i + 6];
    d |= v[i + 3] | v[i + 7];
  }
  const V all = a | b | c | d;
  return (all[0] | all[1] | all[2] | all[3]) != 0;
}

#if defined(TENDRIL_ASAN) || defined(TENDRIL_TSAN)
// Not instrumented by ASan: the zone is not the program's memory, and under ASan its shadow can
// read as poisoned (an "unknown-crash" report in the dense-stack tests), which says nothing about
// its contents. No target_clones under sanitizers: clang does not combine it with no_sanitize,
// and under TSan the ifunc resolver, instrumented, runs before TSan is initialised and crashes.
[[gnu::no_sanitize_address]] bool any_nonzero(const std::uint64_t* zone,
                                              std::size_t bytes) noexcept {
  return or_words(zone, bytes);
}
#else
// AVX2 where the CPU has it, picked once at load time; SSE2 otherwise.
[[gnu::target_clones("avx2", "default")]] bool any_nonzero(const std::uint64_t* zone,
                                                           std::size_t bytes) noexcept {
  return or_words(zone, bytes);
}
#endif

}  // namespace

bool StackPool::overflowed(const boost::context::stack_context& sctx) const noexcept {
  if (options_.mode != StackMode::dense || kernel_guarded_) return false;
  // The page under the stack is never written, so it reads from the kernel's zero page, which
  // stays in cache.
  return any_nonzero(reinterpret_cast<const std::uint64_t*>(static_cast<const char*>(sctx.sp) -
                                                            sctx.size - page_bytes_),
                     page_bytes_);
}

bool StackPool::in_guard(const boost::context::stack_context& sctx,
                         const void* address) const noexcept {
  if (sctx.sp == nullptr) return false;
  const auto bottom = reinterpret_cast<std::uintptr_t>(sctx.sp) - sctx.size;
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  return a < bottom && a >= bottom - guard_bytes_;
}

boost::context::stack_context StackPool::carve() {
  // Each stack is a region of guard_bytes followed by the stack itself, both page-aligned:
  // [region 0][stack 0][region 1][stack 1]... Stack i grows down towards region i, which nothing
  // touches unless stack i overflows (stack i-1 grows away from it).
  const std::size_t stride = options_.size_bytes + guard_bytes_;
  const std::size_t per_slab = std::max<std::size_t>(1, slab_target_bytes / stride);
  if (slabs_.empty() || slab_next_ == per_slab) {
    const std::size_t bytes = per_slab * stride;
    void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
      throw StackLimitError(errno, std::generic_category(),
                            "tendril: cannot map a slab of " + std::to_string(bytes) +
                                " bytes for greenlet stacks (" + std::to_string(live_) +
                                " stacks live)");
    }
    slabs_.push_back({base, bytes});
    slab_next_ = 0;
    prepared_ = 0;
    mapped_bytes_ += bytes;
  }
  if (slab_next_ == prepared_) prepare(std::min(batch_stacks, per_slab - slab_next_));
  char* region = static_cast<char*>(slabs_.back().base) + slab_next_ * stride;
  ++slab_next_;
  boost::context::stack_context sctx;
  sctx.size = options_.size_bytes;
  sctx.sp = region + guard_bytes_ + options_.size_bytes;
  return sctx;
}

void StackPool::prepare(std::size_t n) {
  // The guard regions of the next n stacks of the last slab, then their first (top) pages, which
  // every greenlet writes at once: faulted in by one system call rather than n page faults.
  const std::size_t stride = options_.size_bytes + guard_bytes_;
  char* first = static_cast<char*>(slabs_.back().base) + slab_next_ * stride;
  iovec regions[batch_stacks];
  iovec tops[batch_stacks];
  for (std::size_t i = 0; i < n; ++i) {
    regions[i] = {first + i * stride, guard_bytes_};
    tops[i] = {first + (i + 1) * stride - page_bytes_, page_bytes_};
  }
  std::size_t ready = 0;
  if (options_.kernel_guards && kernel_guard_regions.load() == 1) {
    ready = advise_all(regions, n, madv_guard_install);
    if (ready == 0) {
      throw StackLimitError(errno, std::generic_category(),
                            "tendril: cannot install the guard region of greenlet stack #" +
                                std::to_string(live_ + 1));
    }
    kernel_guarded_ = true;
  } else {
    // The process's first stack finds out whether the kernel has guard regions; without them
    // (or with kernel_guards off), each region is made on its own.
    for (; ready < n; ++ready) {
      try {
        guard(static_cast<char*>(regions[ready].iov_base));
      } catch (const StackLimitError&) {
        if (ready == 0) throw;  // the stack asked for cannot be had
        break;                  // the next carve meets the limit
      }
    }
  }
  advise_all(tops, ready, madv_populate_write);  // else they fault in when first written
  prepared_ = slab_next_ + ready;
}

void StackPool::guard(char* region) {
  if (options_.kernel_guards && kernel_guard_regions.load() != 2) {
    // A kernel guard region faults on any touch and needs no mapping of its own. The first stack
    // of the process finds out whether the kernel has them (Linux 6.13+; EINVAL before).
    if (::madvise(region, guard_bytes_, madv_guard_install) == 0) {
      kernel_guard_regions.store(1);
      kernel_guarded_ = true;
      return;
    }
    const int err = errno;
    if (err != EINVAL || kernel_guard_regions.load() == 1) {
      throw StackLimitError(err, std::generic_category(),
                            "tendril: cannot install the guard region of greenlet stack #" +
                                std::to_string(live_ + 1));
    }
    kernel_guard_regions.store(2);
    kernel_guarded_ = false;
  }
  if (options_.mode == StackMode::dense) return;  // the zone stays untouched memory, checked
  if (::mprotect(region, guard_bytes_, PROT_NONE) != 0) {
    // Each guard region splits the slab's mapping; ENOMEM here almost always means the process
    // hit vm.max_map_count. Say so instead of silently running without a guard.
    throw StackLimitError(
        errno, std::generic_category(),
        "tendril: cannot protect the guard page of greenlet stack #" + std::to_string(live_ + 1) +
            " (the kernel's vm.max_map_count limit allows about 32k guarded stacks without "
            "kernel guard regions (Linux 6.13+); use StackMode::dense for more greenlets)");
  }
}

}  // namespace tendril
