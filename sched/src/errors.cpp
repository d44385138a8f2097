// SPDX-License-Identifier: Apache-2.0
// errors.cpp: exception rendering and the invariant-failure path.
#include "tendril/sched/errors.hpp"

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <typeinfo>

#include "tendril/sched/assert.hpp"
#include "tendril/sched/greenlet.hpp"
#include "tendril/sched/hub.hpp"

namespace tendril {
namespace {

std::string demangle(const std::type_info* type) {
  if (!type) return "unknown exception";
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(type->name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type->name());
}

}  // namespace

std::string describe_exception(const std::exception_ptr& e) noexcept {
  if (!e) return "no exception";
  try {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      return demangle(abi::__cxa_current_exception_type()) + ": " + x.what();
    } catch (const GreenletExit& x) {
      return x.what();
    } catch (const Timeout& x) {
      return x.what();
    } catch (const SystemExit& x) {
      return std::string(x.what()) + "(" + std::to_string(x.code()) + ")";
    } catch (...) {
      return demangle(abi::__cxa_current_exception_type());
    }
  } catch (...) {
    return "exception (rendering it failed)";
  }
}

namespace detail {

void assert_fail(const char* file, int line, const char* condition,
                 const std::string& message) noexcept {
  std::fprintf(stderr, "tendril: invariant broken at %s:%d: %s\n  %s\n", file, line, condition,
               message.c_str());
  if (Hub* hub = current_hub_or_null()) {
    try {
      std::fprintf(stderr, "  hub: %s\n", hub->position().c_str());
      if (Greenlet* g = hub->current()) {
        std::fprintf(stderr, "  current greenlet: %s\n", g->describe().c_str());
      } else {
        std::fprintf(stderr, "  current greenlet: none (the hub's own stack)\n");
      }
    } catch (...) {
    }
  }
  std::fflush(stderr);
  std::abort();
}

}  // namespace detail
}  // namespace tendril
