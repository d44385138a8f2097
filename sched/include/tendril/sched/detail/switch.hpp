// SPDX-License-Identifier: Apache-2.0
// tendril/sched/detail/switch.hpp (internal): AddressSanitizer and ThreadSanitizer annotations
// for fiber switches. Boost 1.74's fcontext fibers carry none, so tendril tells the sanitizers
// about every switch itself (see README.md, "Sanitizers"); in other builds these compile to
// nothing and switches stay at fcontext speed. Public only because the switch path is inline in
// hub.hpp/greenlet.hpp.
#pragma once

#include <cxxabi.h>

#include <boost/context/fiber.hpp>
#include <cstddef>
#include <utility>

#include "tendril/sched/assert.hpp"

// GCC says __SANITIZE_ADDRESS__ / __SANITIZE_THREAD__; clang says __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define TENDRIL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TENDRIL_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define TENDRIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TENDRIL_TSAN 1
#endif
#endif

#if defined(TENDRIL_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(TENDRIL_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace tendril::detail {

// asan_start_switch() is called right before a switch to the stack [bottom, bottom + size);
// save is null when the current stack is finishing for good.
inline void asan_start_switch([[maybe_unused]] void** save, [[maybe_unused]] const void* bottom,
                              [[maybe_unused]] std::size_t size) {
#if defined(TENDRIL_ASAN)
  __sanitizer_start_switch_fiber(save, bottom, size);
#endif
}

// asan_finish_switch() is called first thing after a switch lands; it reports the stack that was
// left, for a context whose bounds tendril does not know (the thread's own stack).
inline void asan_finish_switch([[maybe_unused]] void* save,
                               [[maybe_unused]] const void** from_bottom,
                               [[maybe_unused]] std::size_t* from_size) {
#if defined(TENDRIL_ASAN)
  __sanitizer_finish_switch_fiber(save, from_bottom, from_size);
#endif
}

// land() stores the context a switch got back into the slot its leaver named (Hub::save_to_).
// That slot is always empty: it belongs to the context that was running (the hub's native_ while
// the hub runs, a greenlet's ctx_ while it runs), whose resume emptied it. Said to the compiler,
// the move drops the check for an old context to destroy; sanitizer builds check it instead.
[[gnu::always_inline]] inline void land(boost::context::fiber* slot,
                                        boost::context::fiber&& back) noexcept {
#if defined(TENDRIL_ASAN) || defined(TENDRIL_TSAN)
  TENDRIL_ASSERT(!*slot, "a switch landed on a context slot that is not empty");
#else
  if (*slot) __builtin_unreachable();
#endif
  *slot = std::move(back);
}

// The C++ runtime keeps the exceptions being handled (the stack of caught exceptions that
// `throw;` and std::current_exception() read) and std::uncaught_exceptions() per thread. Each
// greenlet needs its own, as each thread does, or a greenlet that blocks inside a catch block
// hands its exception to the next one to run (userver and folly swap them the same way).
// EhState mirrors __cxa_eh_globals of the Itanium C++ ABI (libstdc++ and libc++ alike).
struct EhState {
  void* caught = nullptr;
  unsigned int uncaught = 0;
  unsigned int padding = 0;  // the ABI struct's padding on LP64: whole 16 bytes move as one
};

// eh_globals() is this thread's exception state.
inline EhState* eh_globals() noexcept {
  return reinterpret_cast<EhState*>(abi::__cxa_get_globals());
}

// eh_swap() exchanges the running context's exception state with a saved one: before a switch it
// stores the leaving context's and installs the entering one's; after switching back, again.
inline void eh_swap(EhState* thread, EhState& saved) noexcept {
  static_assert(sizeof(EhState) == 2 * sizeof(void*) || sizeof(void*) != 8);
  std::swap(*thread, saved);
}

// ThreadSanitizer keeps a shadow context per fiber: each greenlet gets one when it first runs,
// every switch says which fiber runs next (flag 0: the switch orders memory, as a cooperative
// switch does), and the fiber is destroyed once its greenlet has finished. Without them, TSan
// sees one thread's stack jump between unrelated frames and reports nonsense.

// tsan_enter() is called right before switching into the fiber `fiber` (created on first use);
// `from` receives the fiber being left, so that switching back can name it.
inline void tsan_enter([[maybe_unused]] void*& fiber, [[maybe_unused]] void*& from) {
#if defined(TENDRIL_TSAN)
  from = __tsan_get_current_fiber();
  if (fiber == nullptr) fiber = __tsan_create_fiber(0);
  __tsan_switch_to_fiber(fiber, 0);
#endif
}

// tsan_leave() is called right before switching back to `to` (from tsan_enter()).
inline void tsan_leave([[maybe_unused]] void* to) {
#if defined(TENDRIL_TSAN)
  if (to != nullptr) __tsan_switch_to_fiber(to, 0);
#endif
}

// tsan_switch() is called right before a greenlet switches straight to another one that has
// run before (so it has its fiber), leaving the hub's fiber as it is.
inline void tsan_switch([[maybe_unused]] void* fiber) {
#if defined(TENDRIL_TSAN)
  __tsan_switch_to_fiber(fiber, 0);
#endif
}

// tsan_destroy() releases a fiber's shadow context once nothing will run on it again.
inline void tsan_destroy([[maybe_unused]] void*& fiber) {
#if defined(TENDRIL_TSAN)
  if (fiber != nullptr) __tsan_destroy_fiber(fiber);
#endif
  fiber = nullptr;
}

}  // namespace tendril::detail
