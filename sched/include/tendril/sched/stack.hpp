// SPDX-License-Identifier: Apache-2.0
// tendril/sched/stack.hpp: greenlet stacks, pooled so that spawning never maps memory when warm.
#pragma once

#include <boost/context/stack_context.hpp>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tendril/sched/detail/switch.hpp"  // TENDRIL_ASAN

namespace tendril {

// StackMode picks how stack overflow is caught. In both, stacks are carved from large slabs.
enum class StackMode {
  // guarded: each stack has a guard region below it (StackOptions::guard_bytes) that faults on
  // any touch; an overflow faults at once, and tendril's fault handler names the greenlet before
  // the process dies. Where the kernel has guard regions (Linux 6.13+, MADV_GUARD_INSTALL) it
  // costs no kernel mapping; elsewhere the region is PROT_NONE, two kernel mappings per stack, so
  // that vm.max_map_count (65530 by default) caps it near 32k greenlets.
  guarded,
  // dense: for hundreds of thousands of greenlets on any kernel: each stack is above a zone of
  // guard_bytes that no one writes. Where the kernel has guard regions (Linux 6.13+,
  // MADV_GUARD_INSTALL) the zone is one: any touch faults at once and the fault handler names the
  // greenlet, with no kernel mapping per stack and no cost per switch. Elsewhere the zone stays
  // zero (never touched, so it costs no memory): whenever the greenlet switches out and when it
  // dies, tendril checks that the page under the stack is still zero and the stack pointer in
  // bounds, and aborts naming the greenlet if not. Every call writes a return address, so a
  // recursion of frames up to a page each cannot step over that page; a single frame more than a
  // page larger than the room left that writes nothing in it is caught only with guard regions.
  dense,
};

// StackOptions configures a hub's greenlet stacks.
struct StackOptions {
#if defined(TENDRIL_ASAN)
  // ASan's redzones make frames several times larger.
  static constexpr std::size_t default_size_bytes = 256 * 1024;
#else
  static constexpr std::size_t default_size_bytes = 64 * 1024;
#endif
  // size_bytes is the usable stack size, rounded up to whole pages (minimum 16 KiB). Only touched
  // pages cost memory: an idle greenlet uses one or two 4 KiB pages whatever this says.
  std::size_t size_bytes = default_size_bytes;
  StackMode mode = StackMode::guarded;
  // pool_max_stacks is how many freed stacks keep their memory for reuse; freed stacks beyond it
  // give their pages back (madvise) and keep their addresses.
  std::size_t pool_max_stacks = 4096;
  // guard_bytes is the region under each stack (address space only, no memory), rounded up to
  // whole pages: PROT_NONE in guarded mode, the zone in dense mode. A frame larger than it could
  // jump it unless the code is built with -fstack-clash-protection (tendril's own build is;
  // recommended for yours).
  std::size_t guard_bytes = 64 * 1024;
  // kernel_guards makes the regions under the stacks kernel guard regions where the kernel has
  // them; false keeps the fallbacks (PROT_NONE in guarded mode, the zero-page check in dense
  // mode), for tests of them.
  bool kernel_guards = true;
  // cache_across_hubs: when the hub dies its stacks go to a process-wide cache, which the next hub
  // with the same options takes whole (so it spawns warm): stacks are mapped once per process and
  // never unmapped. false: this hub takes nothing from the cache and unmaps its stacks when it
  // dies (for measuring a fresh hub's memory, say).
  bool cache_across_hubs = true;
};

// StackPool hands out and takes back greenlet stacks; one per hub, used on the hub's thread only.
class StackPool {
 public:
  explicit StackPool(const StackOptions& options);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // allocate() returns a stack; throws std::system_error naming the limit it hit when the kernel
  // refuses memory or a mapping (for example vm.max_map_count in guarded mode).
  boost::context::stack_context allocate();
  // deallocate() returns a stack obtained from allocate() to the pool.
  void deallocate(boost::context::stack_context& sctx) noexcept;
  // overflowed() tells whether something was written in the dense-mode check zone under sctx
  // (always false in guarded mode).
  bool overflowed(const boost::context::stack_context& sctx) const noexcept;
  // in_guard() tells whether address lies in the guard region under sctx (guarded mode) or in
  // the check zone (dense mode); safe in a signal handler.
  bool in_guard(const boost::context::stack_context& sctx, const void* address) const noexcept;

  const StackOptions& options() const noexcept { return options_; }
  // live_stacks() counts stacks handed out and not yet returned.
  std::size_t live_stacks() const noexcept { return live_; }
  // mapped_bytes() counts address space the pool has mapped itself (virtual, not resident), not
  // counting the stacks it took from the process-wide cache.
  std::size_t mapped_bytes() const noexcept { return mapped_bytes_; }

  // zone_bytes() is the dense mode's zone under each stack (guard_bytes; 0 in guarded mode).
  std::size_t zone_bytes() const noexcept {
    return options_.mode == StackMode::dense ? guard_bytes_ : 0;
  }
  // kernel_guarded() tells whether the regions under the stacks are kernel guard regions (then
  // dense mode checks nothing at switches: a touch faults).
  bool kernel_guarded() const noexcept { return kernel_guarded_; }
  // checks_switches() tells whether the hub must check the stack at every switch out (dense
  // mode without kernel guard regions).
  bool checks_switches() const noexcept {
    return options_.mode == StackMode::dense && !kernel_guarded_;
  }

  // Slab is one mapping stacks are carved from.
  struct Slab {
    void* base;
    std::size_t bytes;
  };

 private:
  // carve() takes the next stack from the last slab (mapping a new one when it is used up);
  // prepare() makes the next stacks ready, a batch at a time (their guard regions and first
  // pages); guard() makes one region what the mode needs; release_pending() gives the pages of
  // the last pending_ released_ stacks back.
  boost::context::stack_context carve();
  void prepare(std::size_t n);
  void guard(char* region);
  void release_pending() noexcept;
  // populate_released() faults in the first pages of the last released_ stacks, a batch at once.
  void populate_released() noexcept;

  StackOptions options_;
  std::size_t page_bytes_;
  std::size_t guard_bytes_;                          // options_.guard_bytes in whole pages
  bool kernel_guarded_ = false;                      // the regions are MADV_GUARD_INSTALL regions
  std::vector<boost::context::stack_context> free_;  // with their pages
  std::vector<boost::context::stack_context> released_;  // pages given back (release_pages)
  std::vector<Slab> slabs_;    // never unmapped: handed to the process-wide cache at the end
  std::size_t slab_next_ = 0;  // stacks already carved from slabs_.back()
  std::size_t prepared_ = 0;   // stacks of slabs_.back() made ready (prepared_ >= slab_next_)
  std::size_t pending_ = 0;    // released_'s last entries whose pages are not given back yet
  std::size_t populated_ = 0;  // released_'s last entries whose first pages are faulted in
  std::size_t live_ = 0;
  std::size_t mapped_bytes_ = 0;   // mapped by this pool
  std::size_t adopted_bytes_ = 0;  // mapped by the pools whose stacks it took from the cache
};

}  // namespace tendril
