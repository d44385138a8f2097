// SPDX-License-Identifier: Apache-2.0
// interpose.cpp: libtendril_green.so, monkey patching for C++. Linked into a program (CMake:
// tendril::green) or preloaded (LD_PRELOAD=libtendril_green.so), it defines libc's sleep and
// clock functions, so that every call to them, from the program or from any library it uses,
// comes here first:
//   - on a greenlet of a running hub, sleep, usleep, nanosleep and clock_nanosleep wait on the
//     hub (cooperatively: other greenlets run meanwhile);
//   - on a thread running a SimHub, clock_gettime, gettimeofday and time read its virtual clock
//     (so std::chrono's clocks do too): CLOCK_REALTIME is virtual_epoch_s + the virtual time,
//     the monotonic clocks are the virtual time itself; getrandom and getentropy give bytes
//     from one recorded random choice per request (replayed, explored, FIFO: the same bytes);
//   - everywhere else (other threads, no running hub, a program without tendril, the CPU-time
//     clocks) the call goes to libc unchanged.
// The scheduler's side is tendril_green_hooks_v2 (green_hooks.h), looked up once.
#include <dlfcn.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "common.hpp"

namespace {

using tendril_green::hooks;
using tendril_green::next;

// CLOCK_REALTIME on a SimHub at virtual time 0: 2000-01-01T00:00:00Z.
constexpr long long virtual_epoch_s = 946'684'800;
constexpr long long billion = 1'000'000'000;

bool on_greenlet(const tendril_green_hooks*& h) noexcept {
  h = hooks();
  return h != nullptr && h->on_greenlet() != 0;
}

bool virtual_clock(long long& now) noexcept {
  const tendril_green_hooks* h = hooks();
  return h != nullptr && h->virtual_now_ns(&now) != 0;
}

bool monotonic(clockid_t id) noexcept {
  return id == CLOCK_MONOTONIC || id == CLOCK_MONOTONIC_RAW || id == CLOCK_MONOTONIC_COARSE ||
         id == CLOCK_BOOTTIME;
}

bool realtime(clockid_t id) noexcept { return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE; }

bool valid(const timespec* t) noexcept {
  return t != nullptr && t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < billion;
}

long long to_ns(const timespec& t) noexcept {
  if (t.tv_sec >= LLONG_MAX / billion) return LLONG_MAX;  // forever, for all purposes
  return static_cast<long long>(t.tv_sec) * billion + t.tv_nsec;
}

}  // namespace

extern "C" {

int clock_gettime(clockid_t id, timespec* ts) noexcept {
  long long now = 0;
  if ((monotonic(id) || realtime(id)) && virtual_clock(now)) {
    if (realtime(id)) now += virtual_epoch_s * billion;
    ts->tv_sec = static_cast<time_t>(now / billion);
    ts->tv_nsec = static_cast<long>(now % billion);
    return 0;
  }
  static const auto real = next<int (*)(clockid_t, timespec*)>("clock_gettime");
  return real(id, ts);
}

int gettimeofday(timeval* tv, void* tz) noexcept {
  long long now = 0;
  if (virtual_clock(now)) {
    now += virtual_epoch_s * billion;
    tv->tv_sec = static_cast<time_t>(now / billion);
    tv->tv_usec = static_cast<suseconds_t>(now % billion / 1000);
    if (tz != nullptr) static_cast<struct timezone*>(tz)->tz_minuteswest = 0;
    if (tz != nullptr) static_cast<struct timezone*>(tz)->tz_dsttime = 0;
    return 0;
  }
  static const auto real = next<int (*)(timeval*, void*)>("gettimeofday");
  return real(tv, tz);
}

time_t time(time_t* out) noexcept {
  long long now = 0;
  if (virtual_clock(now)) {
    const auto t = static_cast<time_t>(virtual_epoch_s + now / billion);
    if (out != nullptr) *out = t;
    return t;
  }
  static const auto real = next<time_t (*)(time_t*)>("time");
  return real(out);
}

// The sleeps are not noexcept: a greenlet killed while it sleeps unwinds out of them.
unsigned int sleep(unsigned int seconds) {
  const tendril_green_hooks* h = nullptr;
  if (on_greenlet(h)) {
    h->sleep_ns(static_cast<long long>(seconds) * billion);
    return 0;
  }
  static const auto real = next<unsigned int (*)(unsigned int)>("sleep");
  return real(seconds);
}

int usleep(useconds_t us) {
  const tendril_green_hooks* h = nullptr;
  if (on_greenlet(h)) {
    h->sleep_ns(static_cast<long long>(us) * 1000);
    return 0;
  }
  static const auto real = next<int (*)(useconds_t)>("usleep");
  return real(us);
}

int nanosleep(const timespec* req, timespec* rem) {
  const tendril_green_hooks* h = nullptr;
  if (on_greenlet(h)) {
    if (!valid(req)) {
      errno = EINVAL;
      return -1;
    }
    h->sleep_ns(to_ns(*req));
    if (rem != nullptr) *rem = timespec{0, 0};
    return 0;
  }
  static const auto real = next<int (*)(const timespec*, timespec*)>("nanosleep");
  return real(req, rem);
}

int clock_nanosleep(clockid_t id, int flags, const timespec* req, timespec* rem) {
  const tendril_green_hooks* h = nullptr;
  if ((monotonic(id) || realtime(id)) && on_greenlet(h)) {
    if (!valid(req)) return EINVAL;  // clock_nanosleep returns the error, errno untouched
    long long ns = to_ns(*req);
    if ((flags & TIMER_ABSTIME) != 0) {
      timespec now{};
      clock_gettime(id, &now);  // this library's: virtual on a SimHub
      const long long at = to_ns(now);
      ns = ns > at ? ns - at : 0;
    }
    h->sleep_ns(ns);
    if (rem != nullptr && (flags & TIMER_ABSTIME) == 0) *rem = timespec{0, 0};
    return 0;
  }
  static const auto real =
      next<int (*)(clockid_t, int, const timespec*, timespec*)>("clock_nanosleep");
  return real(id, flags, req, rem);
}

ssize_t getrandom(void* buf, size_t n, unsigned int flags) {
  const tendril_green_hooks* h = hooks();
  if (h != nullptr && h->random_bytes(buf, n) != 0) return static_cast<ssize_t>(n);
  static const auto real = next<ssize_t (*)(void*, size_t, unsigned int)>("getrandom");
  return real(buf, n, flags);
}

int getentropy(void* buf, size_t n) {
  if (n > 256) {  // libc's limit, and its error
    errno = EIO;
    return -1;
  }
  const tendril_green_hooks* h = hooks();
  if (h != nullptr && h->random_bytes(buf, n) != 0) return 0;
  static const auto real = next<int (*)(void*, size_t)>("getentropy");
  return real(buf, n);
}

}  // extern "C"
