// tendril/sched/detail/switch.hpp (internal): AddressSanitizer annotations for fiber switches.
// Boost 1.74's fcontext fibers carry none, so tendril tells ASan about every switch itself (see
// README.md, "Sanitizers"); in other builds these compile to nothing and switches stay at
// fcontext speed. Public only because the switch path is inline in hub.hpp/greenlet.hpp.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

namespace tendril::detail {

// asan_start_switch() is called right before a switch to the stack [bottom, bottom + size);
// save is null when the current stack is finishing for good.
inline void asan_start_switch([[maybe_unused]] void** save, [[maybe_unused]] const void* bottom,
                              [[maybe_unused]] std::size_t size) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(save, bottom, size);
#endif
}

// asan_finish_switch() is called first thing after a switch lands; it reports the stack that was
// left, for a context whose bounds tendril does not know (the thread's own stack).
inline void asan_finish_switch([[maybe_unused]] void* save,
                               [[maybe_unused]] const void** from_bottom,
                               [[maybe_unused]] std::size_t* from_size) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(save, from_bottom, from_size);
#endif
}

}  // namespace tendril::detail
