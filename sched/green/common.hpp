// SPDX-License-Identifier: Apache-2.0
// common.hpp: what the interposer's files share: the scheduler's hook table and libc's own
// definitions of the functions they interpose.
#pragma once
#include <dlfcn.h>

#include <atomic>
#include <cstddef>

#include "green_hooks.h"

namespace tendril_green {

// hooks() is the scheduler's table, or nullptr in a program without tendril (or one whose
// executable does not export it). Looked up on first use; a lookup that calls back into an
// interposed function (dlsym is allowed to read the clock) sees nullptr and passes through.
inline const tendril_green_hooks* hooks() noexcept {
  static std::atomic<const tendril_green_hooks*> table{nullptr};
  static std::atomic<int> state{0};  // 0: not looked up, 1: looking, 2: done
  if (state.load(std::memory_order_acquire) == 2) return table.load(std::memory_order_relaxed);
  int expected = 0;
  if (!state.compare_exchange_strong(expected, 1)) {
    return state.load(std::memory_order_acquire) == 2 ? table.load(std::memory_order_relaxed)
                                                      : nullptr;
  }
  table.store(
      static_cast<const tendril_green_hooks*>(::dlsym(RTLD_DEFAULT, "tendril_green_hooks_v2")),
      std::memory_order_relaxed);
  state.store(2, std::memory_order_release);
  return table.load(std::memory_order_relaxed);
}

// next<F>(name) is libc's own function (the next definition after this library's).
template <class F>
inline F next(const char* name) noexcept {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

// TENDRIL_GREEN_HAS(h, member) says whether the scheduler's table is recent enough to hold member.
#define TENDRIL_GREEN_HAS(h, member) \
  ((h)->size >= offsetof(tendril_green_hooks, member) + sizeof((h)->member))

}  // namespace tendril_green
