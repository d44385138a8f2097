// stack.cpp: the greenlet stack pool.
#include "tendril/sched/stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

namespace tendril {
namespace detail {
void install_overflow_handler();  // overflow.cpp
}  // namespace detail
namespace {

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

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
  if (options_.mode == StackMode::guarded) detail::install_overflow_handler();
}

StackPool::~StackPool() {
  if (options_.mode == StackMode::guarded) {
    for (auto& s : free_) {
      ::munmap(static_cast<char*>(s.sp) - s.size - guard_bytes_, s.size + guard_bytes_);
    }
  }
  for (auto& slab : slabs_) ::munmap(slab.base, slab.bytes);
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
  if (options_.mode == StackMode::dense) {
    // Rewritten on every reuse: madvise(DONTNEED) may have zeroed it. A zone, not one word, so
    // that a frame skipping over a few bytes still lands on it.
    char* bottom = static_cast<char*>(sctx.sp) - sctx.size;
    for (std::size_t i = 0; i < canary_words; ++i) {
      std::memcpy(bottom + i * sizeof canary, &canary, sizeof canary);
    }
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
    ::munmap(bottom - guard_bytes_, sctx.size + guard_bytes_);
    mapped_bytes_ -= sctx.size + guard_bytes_;
  } else {
    // Dense stacks stay in their slab; give the pages that belong to this stack alone back to the
    // kernel (its first and last pages are shared with its neighbours) and keep the address.
    const auto first = reinterpret_cast<std::uintptr_t>(bottom) + page_bytes_ - 1;
    char* from = reinterpret_cast<char*>(first - first % page_bytes_);
    const auto last = reinterpret_cast<std::uintptr_t>(sctx.sp);
    char* to = reinterpret_cast<char*>(last - last % page_bytes_);
    if (to > from) ::madvise(from, static_cast<std::size_t>(to - from), MADV_DONTNEED);
    free_.push_back(sctx);
  }
}

bool StackPool::overflowed(const boost::context::stack_context& sctx) const noexcept {
  if (options_.mode != StackMode::dense) return false;
  const char* bottom = static_cast<const char*>(sctx.sp) - sctx.size;
  for (std::size_t i = 0; i < canary_words; ++i) {
    std::uint64_t word;
    std::memcpy(&word, bottom + i * sizeof word, sizeof word);
    if (word != canary) return true;
  }
  return false;
}

bool StackPool::in_guard(const boost::context::stack_context& sctx,
                         const void* address) const noexcept {
  if (options_.mode != StackMode::guarded || sctx.sp == nullptr) return false;
  const auto bottom = reinterpret_cast<std::uintptr_t>(sctx.sp) - sctx.size;
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  return a < bottom && a >= bottom - guard_bytes_;
}

boost::context::stack_context StackPool::map_guarded() {
  const std::size_t bytes = options_.size_bytes + guard_bytes_;
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(),
                            "tendril: cannot map a greenlet stack of " + std::to_string(bytes) +
                                " bytes (" + std::to_string(live_) + " stacks live)");
  }
  if (::mprotect(base, guard_bytes_, PROT_NONE) != 0) {
    const int err = errno;
    ::munmap(base, bytes);
    // Each guard page splits the mapping in two; ENOMEM here almost always means the process hit
    // vm.max_map_count. Say so instead of silently running without a guard page.
    throw std::system_error(
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
  // Every stack starts `canary_bytes` below a page boundary, so its canary (its lowest word)
  // shares a page with the top of the stack beneath it, which is resident while that greenlet
  // lives. An idle greenlet whose frames fit in its top page then costs one page, not two.
  constexpr std::size_t canary_bytes = canary_words * sizeof canary;
  const std::size_t per_slab = std::max<std::size_t>(1, slab_target_bytes / options_.size_bytes);
  if (slabs_.empty() || slab_next_ == per_slab) {
    const std::size_t bytes = per_slab * options_.size_bytes + page_bytes_;
    void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
      throw std::system_error(errno, std::generic_category(),
                              "tendril: cannot map a slab of " + std::to_string(bytes) +
                                  " bytes for dense greenlet stacks (" + std::to_string(live_) +
                                  " stacks live)");
    }
    slabs_.push_back({base, bytes});
    slab_next_ = 0;
    mapped_bytes_ += bytes;
  }
  char* bottom = static_cast<char*>(slabs_.back().base) + (page_bytes_ - canary_bytes) +
                 slab_next_ * options_.size_bytes;
  ++slab_next_;
  boost::context::stack_context sctx;
  sctx.size = options_.size_bytes;
  sctx.sp = bottom + options_.size_bytes;
  return sctx;
}

}  // namespace tendril
