// SPDX-License-Identifier: Apache-2.0
// tendril/sched/assert.hpp: invariant checks that stay on in every build.
#pragma once

#include <sstream>
#include <string>

namespace tendril::detail {

// assert_fail() prints the failed invariant with the running hub's position (seed, step, current
// greenlet) to stderr and aborts; called only by TENDRIL_ASSERT.
[[noreturn]] void assert_fail(const char* file, int line, const char* condition,
                              const std::string& message) noexcept;

// concat() streams its arguments into one string; used to build assertion messages lazily.
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

}  // namespace tendril::detail

// TENDRIL_ASSERT(cond, parts...) aborts with a message built from parts when cond is false.
// A broken invariant is a bug in tendril or in how it is used, never an exception to catch.
#define TENDRIL_ASSERT(cond, ...)                                                               \
  do {                                                                                          \
    if (__builtin_expect(!(cond), 0)) {                                                         \
      ::tendril::detail::assert_fail(__FILE__, __LINE__, #cond,                                 \
                                     ::tendril::detail::concat("" __VA_OPT__(, ) __VA_ARGS__)); \
    }                                                                                           \
  } while (false)
