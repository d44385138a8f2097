// SPDX-License-Identifier: Apache-2.0
// overflow.cpp: naming the greenlet when the process dies in one: a stack overflow, or
// std::terminate (an exception thrown by a destructor while GreenletExit unwinds, say).
//
// Stack overflow. In guarded mode an overflow faults in the PROT_NONE region under the stack; in
// dense mode a runaway recursion runs through the stacks below until it faults somewhere. This
// SIGSEGV/SIGBUS handler, on an alternate signal stack (the faulting one is exhausted), recognises
// either (a fault in the region under the running greenlet's stack, or a stack pointer below
// that stack's bottom) and writes one line saying so before passing the signal on (to the
// handler installed before, such as ASan's, or to the default action, which ends the process).
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>

#include "tendril/sched/greenlet.hpp"
#include "tendril/sched/hub.hpp"

namespace tendril::detail {
namespace {

struct sigaction previous_segv {};
struct sigaction previous_bus {};

// Async-signal-safe output: write(2) of pieces, numbers converted by hand.
void put(const char* s, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}
void put(const char* s) { put(s, std::strlen(s)); }
void put_number(std::uint64_t v) {
  char digits[24];
  std::size_t i = sizeof digits;
  do {
    digits[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  put(digits + i, sizeof digits - i);
}

// stack_pointer() is the interrupted stack pointer, or 0 where this build does not know how to
// read it.
std::uintptr_t stack_pointer(const void* context) {
#if defined(__x86_64__)
  return static_cast<std::uintptr_t>(
      static_cast<const ucontext_t*>(context)->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
  return static_cast<std::uintptr_t>(static_cast<const ucontext_t*>(context)->uc_mcontext.sp);
#else
  (void)context;
  return 0;
#endif
}

// overflowed() says whether the fault is the running greenlet's stack overflow.
bool overflowed(Hub& hub, const Greenlet& g, const siginfo_t& info, const void* context) {
  if (g.stack().sp == nullptr) return false;
  if (hub.stacks().in_guard(g.stack(), info.si_addr)) return true;
  const auto bottom = reinterpret_cast<std::uintptr_t>(g.stack().sp) - g.stack().size;
  const std::uintptr_t sp = context != nullptr ? stack_pointer(context) : 0;
  return sp != 0 && sp < bottom;
}

extern "C" void on_fault(int sig, siginfo_t* info, void* context) {
  if (Hub* hub = t_bound_hub; hub != nullptr && info != nullptr) {
    const Greenlet* g = hub->current();
    if (g != nullptr && overflowed(*hub, *g, *info, context)) {
      put("tendril: stack overflow in greenlet #");
      put_number(g->id());
      if (!g->name().empty()) {
        put(" '");
        put(g->name().data(), g->name().size());
        put("'");
      }
      put(" (its stack is ");
      put_number(g->stack().size);
      put(" bytes: raise StackOptions::size_bytes, or move large buffers off the stack)\n");
    }
  }
  // Pass it on: to the handler that was there before, else the default action (the process
  // ends when the faulting instruction runs again).
  const struct sigaction& prev = sig == SIGBUS ? previous_bus : previous_segv;
  if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, context);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler != nullptr) {
    prev.sa_handler(sig);
    return;
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
}

// The alternate signal stack of a thread that runs a hub, if it had none.
struct AltStack {
  std::unique_ptr<char[]> memory;
  ~AltStack() {
    if (!memory) return;
    stack_t none{};
    none.ss_flags = SS_DISABLE;
    ::sigaltstack(&none, nullptr);
  }
};
thread_local AltStack t_alt_stack;
thread_local bool t_alt_checked = false;

std::terminate_handler previous_terminate = nullptr;

// on_terminate() names the running greenlet and what was being thrown, then does what the
// previous handler did (by default: abort).
[[noreturn]] void on_terminate() {
  if (Hub* hub = t_bound_hub; hub != nullptr) {
    if (const Greenlet* g = hub->current()) {
      const std::string what =
          std::current_exception() ? describe_exception(std::current_exception()) : "";
      std::fprintf(stderr, "tendril: std::terminate called in greenlet %s%s%s\n",
                   g->describe().c_str(), what.empty() ? "" : " with ", what.c_str());
      std::fflush(stderr);
    }
  }
  if (previous_terminate != nullptr) previous_terminate();
  std::abort();
}

}  // namespace

void install_terminate_handler() {
  static std::once_flag once;
  std::call_once(once, [] { previous_terminate = std::set_terminate(&on_terminate); });
}

void install_overflow_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction mine {};
    mine.sa_sigaction = &on_fault;
    mine.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&mine.sa_mask);
    ::sigaction(SIGSEGV, &mine, &previous_segv);
    ::sigaction(SIGBUS, &mine, &previous_bus);
  });
}

void ensure_alt_stack() {
  if (t_alt_checked) return;
  t_alt_checked = true;
  stack_t now{};
  if (::sigaltstack(nullptr, &now) != 0 || (now.ss_flags & SS_DISABLE) == 0) return;  // has one
  constexpr std::size_t bytes = 64 * 1024;
  t_alt_stack.memory = std::make_unique<char[]>(bytes);
  stack_t mine{};
  mine.ss_sp = t_alt_stack.memory.get();
  mine.ss_size = bytes;
  if (::sigaltstack(&mine, nullptr) != 0) t_alt_stack.memory.reset();
}

}  // namespace tendril::detail
