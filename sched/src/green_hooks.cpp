// SPDX-License-Identifier: Apache-2.0
// green_hooks.cpp: what libtendril_green.so (sched/green/interpose.cpp) asks of the scheduler:
// whether the thread runs a greenlet, a cooperative sleep, the simulated hub's clock, and its
// random bytes.
#include "../green/green_hooks.h"

#include <chrono>
#include <cstdint>
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

std::uint64_t mix(std::uint64_t z) noexcept {  // splitmix64
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int random_bytes(void* buf, unsigned long n) {
  tendril::Hub* hub = tendril::current_hub_or_null();
  if (hub == nullptr || std::strcmp(hub->hub_name(), "SimHub") != 0) return 0;
  const std::uint64_t draw = hub->choose(UINT32_MAX);  // recorded: replays, explores, shrinks to 0
  std::uint64_t state = mix(draw ^ mix(hub->next_entropy_draw()));
  auto* out = static_cast<unsigned char*>(buf);
  for (unsigned long i = 0; i < n; i += 8) {
    state = mix(state);
    const unsigned long take = n - i < 8 ? n - i : 8;
    std::memcpy(out + i, &state, take);
  }
  return 1;
}

}  // namespace

// Exported from the executable (tendril::sched's link options add
// --export-dynamic-symbol=tendril_green_hooks_v1; hub.cpp's reference keeps this object in the
// link of every program with a hub), so that the interposer finds it whether it was linked in or
// preloaded.
extern "C"
    [[gnu::visibility("default"), gnu::used]] const tendril_green_hooks tendril_green_hooks_v1 = {
        &on_greenlet, &sleep_ns, &virtual_now_ns, &random_bytes};
