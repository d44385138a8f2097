// SPDX-License-Identifier: Apache-2.0
// green_hooks.cpp: what libtendril_green.so (sched/green/interpose.cpp) asks of the scheduler:
// whether the thread runs a greenlet, a cooperative sleep, and the simulated hub's clock.
#include "../green/green_hooks.h"

#include <chrono>
#include <cstring>

#include "tendril/sched.hpp"

namespace {

int on_greenlet() noexcept {
  const tendril::Hub* hub = tendril::current_hub_or_null();
  return hub != nullptr && hub->current() != nullptr ? 1 : 0;
}

void sleep_ns(long long ns) { tendril::sleep(std::chrono::nanoseconds(ns)); }

int virtual_now_ns(long long* ns) noexcept {
  const tendril::Hub* hub = tendril::current_hub_or_null();
  if (hub == nullptr || std::strcmp(hub->hub_name(), "SimHub") != 0) return 0;
  *ns = hub->now_ns();
  return 1;
}

}  // namespace

// Exported from the executable (tendril::sched's link options add
// --export-dynamic-symbol=tendril_green_hooks_v1; hub.cpp's reference keeps this object in the
// link of every program with a hub), so that the interposer finds it whether it was linked in or
// preloaded.
extern "C"
    [[gnu::visibility("default"), gnu::used]] const tendril_green_hooks tendril_green_hooks_v1 = {
        &on_greenlet, &sleep_ns, &virtual_now_ns};
