// SPDX-License-Identifier: Apache-2.0
// green_hooks.cpp: what libtendril_green.so (sched/green/interpose.cpp) asks of the scheduler:
// whether the thread runs a greenlet, a cooperative sleep, the simulated hub's clock and random
// bytes, cooperative waits on descriptors (the hub's network backend), and its blocking-call
// pool.
#include "../green/green_hooks.h"

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "tendril/net.hpp"
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

int wait_fds(const int* fds, const int* events, int n, long long timeout_ns, const char* call) {
  tendril::Hub* hub = tendril::current_hub_or_null();
  if (hub == nullptr || hub->current() == nullptr || n < 0) return -1;
  tendril::net::Backend* backend = nullptr;
  try {
    backend = &hub->net();
  } catch (const tendril::UsageError&) {
    return -1;  // a hub with no network at all
  }
  std::pair<int, int> one;
  std::vector<std::pair<int, int>> many;
  std::pair<int, int>* pairs = &one;
  if (n > 1) {
    many.resize(static_cast<std::size_t>(n));
    pairs = many.data();
  }
  for (int i = 0; i < n; ++i) pairs[i] = {fds[i], events[i]};
  std::optional<tendril::Duration> timeout;
  if (timeout_ns >= 0) timeout = tendril::Duration(timeout_ns);
  return backend->green_wait(pairs, static_cast<std::size_t>(n), timeout, call);
}

void fd_closing(int fd) {
  tendril::Hub* hub = tendril::current_hub_or_null();
  if (hub == nullptr) return;
  try {
    hub->net().green_closing(fd);
  } catch (const tendril::UsageError&) {
  }
}

int run_blocking(void (*fn)(void*), void* arg) {
  tendril::Hub* hub = tendril::current_hub_or_null();
  if (hub == nullptr || hub->current() == nullptr) return 0;
  tendril::blocking_call([fn, arg] { fn(arg); });
  return 1;
}

long sock(tendril_green_sock* call) {
  tendril::Hub* hub = tendril::current_hub_or_null();
  if (hub == nullptr) return -ENOSYS;
  tendril::net::Backend* backend = nullptr;
  try {
    backend = &hub->net();
  } catch (const tendril::UsageError&) {
    return -ENOSYS;
  }
  return backend->green_socket(*call);
}

const char* hub_name() noexcept {
  const tendril::Hub* hub = tendril::current_hub_or_null();
  return hub != nullptr ? hub->hub_name() : nullptr;
}

}  // namespace

// Exported from the executable (tendril::sched's link options add
// --export-dynamic-symbol=tendril_green_hooks_v2; hub.cpp's reference keeps this object in the
// link of every program with a hub), so that the interposer finds it whether it was linked in or
// preloaded.
extern "C"
    [[gnu::visibility("default"), gnu::used]] const tendril_green_hooks tendril_green_hooks_v2 = {
        sizeof(tendril_green_hooks),
        &on_greenlet,
        &sleep_ns,
        &virtual_now_ns,
        &random_bytes,
        &wait_fds,
        &fd_closing,
        &run_blocking,
        &hub_name,
        &sock};
