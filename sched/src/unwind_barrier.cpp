// SPDX-License-Identifier: Apache-2.0
// unwind_barrier.cpp: main's exception lets the other greenlets die before main's locals do.
//
// C++ unwinds in two phases: the search phase walks up the stack asking each frame's personality
// routine whether it handles the exception, with every frame intact; only then does the cleanup
// phase destroy locals on the way to the handler. Main's body runs under run_behind_barrier(),
// a frame whose personality routine is ours: when an exception leaves main's body (no handler
// inside it), the search phase reaches this frame before anything was destroyed, and the hook
// parks main there while the hub kills the other greenlets (which often use main's locals: a lock
// they hold, a counter they update). Then main resumes, the search goes on to
// Greenlet::entry_point's catch, and the cleanup phase destroys main's locals with no greenlet
// left to use them. The personality never claims the exception: it only runs the hook, so the
// exception, its type and its handler are exactly what they would be without the barrier.
#include <unwind.h>

#include "tendril/sched/hub.hpp"

namespace tendril::detail {

// The personality routine named by the barrier's unwind information. Hidden (and extern "C" for a
// plain symbol name): the pc-relative reference from .eh_frame must resolve inside this library.
extern "C" [[gnu::visibility("hidden"), gnu::used]] _Unwind_Reason_Code
tendril_main_barrier_personality(int version, _Unwind_Action actions, _Unwind_Exception_Class,
                                 _Unwind_Exception*, _Unwind_Context*) {
  // Forced unwinds (thread cancellation; Boost.Context's stack destruction is a plain throw, but
  // the hub has already stopped treating main as main by then) have no search phase.
  if (version == 1 && (actions & _UA_SEARCH_PHASE) != 0 && (actions & _UA_FORCE_UNWIND) == 0) {
    if (Hub* hub = current_hub_or_null(); hub != nullptr) hub->main_exception_leaving();
  }
  return _URC_CONTINUE_UNWIND;
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__aarch64__))
// The .cfi_personality directive gives this function's FDE our routine (0x1b: pc-relative,
// signed 4 bytes). The function has no handler or cleanup of its own, so the compiler emits no
// personality that could compete; the empty asm after the call keeps it from becoming a tail
// call, which would take the frame off the stack.
[[gnu::noinline]] void run_behind_barrier(void (*fn)(void*), void* arg) {
  asm volatile(".cfi_personality 0x1b, tendril_main_barrier_personality");
  fn(arg);
  asm volatile("" ::: "memory");
}
#else
// Elsewhere main's exception unwinds main's locals before the others die (see README).
void run_behind_barrier(void (*fn)(void*), void* arg) { fn(arg); }
#endif

}  // namespace tendril::detail
