// SPDX-License-Identifier: Apache-2.0
// stack.cpp: the greenlet stack pool.
#include "tendril/sched/stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
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

// Dense stacks are carved from slabs this large, so 1M greenlets need a few thousand mappings,
// which the kernel merges anyway because they are adjacent and alike.
constexpr std::size_t slab_target_bytes = 16u << 20;

}  // namespace

StackPool::StackPool(const StackOptions& options)
    : options_(options), page_bytes_(static_cast<std::size_t>(::sysconf(_SC_PAGESIZE))) {
  options_.size_bytes =
      round_up(std::max<std::size_t>(options_.size_bytes, 16 * 1024), page_bytes_);
  guard_bytes_ = round_up(std::max<std::size_t>(options_.guard_bytes, page_bytes_), page_bytes_);
  options_.guard_bytes = guard_bytes_;
  detail::install_overflow_handler();
}

namespace {

// unmap() returns a stack's (or slab's) addresses to the kernel. Under ASan their shadow is
// cleared first: a greenlet's last frames can leave redzones poisoned on a stack it never
// returns through, and a later mapping at the same addresses (a library loaded by dlopen, say)
// would read as a stack-buffer-overflow.
void unmap(void* base, std::size_t bytes) noexcept {
#if defined(TENDRIL_ASAN)
  __asan_unpoison_memory_region(base, bytes);
#endif
  ::munmap(base, bytes);
}

}  // namespace

StackPool::~StackPool() {
  if (options_.mode == StackMode::guarded) {
    for (auto& s : free_) {
      unmap(static_cast<char*>(s.sp) - s.size - guard_bytes_, s.size + guard_bytes_);
    }
  }
  for (auto& slab : slabs_) unmap(slab.base, slab.bytes);
}

boost::context::stack_context StackPool::allocate() {
  boost::context::stack_context sctx;
  if (!free_.empty()) {
    sctx = free_.back();
    free_.pop_back();
  } else if (options_.mode == StackMode::guarded) {
    sctx = map_guarded();
  } else {
    sctx = carve_dense();
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
  char* bottom = static_cast<char*>(sctx.sp) - sctx.size;
  if (options_.mode == StackMode::guarded) {
    unmap(bottom - guard_bytes_, sctx.size + guard_bytes_);
    mapped_bytes_ -= sctx.size + guard_bytes_;
  } else {
    // Dense stacks stay in their slab; give their pages back to the kernel and keep the address
    // (the check zone under the stack was never written, or the process has aborted).
    ::madvise(bottom, sctx.size, MADV_DONTNEED);
    free_.push_back(sctx);
  }
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

boost::context::stack_context StackPool::map_guarded() {
  const std::size_t bytes = options_.size_bytes + guard_bytes_;
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    throw StackLimitError(errno, std::generic_category(),
                          "tendril: cannot map a greenlet stack of " + std::to_string(bytes) +
                              " bytes (" + std::to_string(live_) + " stacks live)");
  }
  if (::mprotect(base, guard_bytes_, PROT_NONE) != 0) {
    const int err = errno;
    ::munmap(base, bytes);
    // Each guard page splits the mapping in two; ENOMEM here almost always means the process hit
    // vm.max_map_count. Say so instead of silently running without a guard page.
    throw StackLimitError(
        err, std::generic_category(),
        "tendril: cannot protect the guard page of greenlet stack #" + std::to_string(live_ + 1) +
            " (the kernel's vm.max_map_count limit allows about 32k guarded stacks; use "
            "StackMode::dense for more greenlets)");
  }
  mapped_bytes_ += bytes;
  boost::context::stack_context sctx;
  sctx.size = options_.size_bytes;
  sctx.sp = static_cast<char*>(base) + bytes;
  return sctx;
}

boost::context::stack_context StackPool::carve_dense() {
  // Each stack is a zone of guard_bytes followed by the stack itself, both page-aligned:
  // [zone 0][stack 0][zone 1][stack 1]... Stack i grows down towards zone i, which nothing
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
                                " bytes for dense greenlet stacks (" + std::to_string(live_) +
                                " stacks live)");
    }
    slabs_.push_back({base, bytes});
    slab_next_ = 0;
    mapped_bytes_ += bytes;
  }
  char* zone = static_cast<char*>(slabs_.back().base) + slab_next_ * stride;
  ++slab_next_;
  if (options_.kernel_guards && (kernel_guarded_ || !guards_probed_)) {
    // A kernel guard region faults on any touch and needs no mapping of its own. The first
    // stack finds out whether the kernel has them (Linux 6.13+; EINVAL before); once it does,
    // every zone gets one, so the switch-time check can be skipped for all.
    const bool ok = ::madvise(zone, guard_bytes_, madv_guard_install) == 0;
    if (!ok && kernel_guarded_) {
      throw StackLimitError(errno, std::generic_category(),
                            "tendril: cannot install the guard region of a dense greenlet "
                            "stack (" +
                                std::to_string(live_) + " stacks live)");
    }
    kernel_guarded_ = ok;
    guards_probed_ = true;
  }
  boost::context::stack_context sctx;
  sctx.size = options_.size_bytes;
  sctx.sp = zone + guard_bytes_ + options_.size_bytes;
  return sctx;
}

}  // namespace tendril
