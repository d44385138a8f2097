// SPDX-License-Identifier: Apache-2.0
// resolve_bench N THREADS LATENCY_MS: N greenlets of a LibevHub resolve names at once with
// tendril::resolve, on a blocking-call pool of at most THREADS threads (LibevOptions::threads);
// prints "seconds S" (wall time from the first spawn to the last answer). Driven by
// bench/resolve_report.py.
//
// A lookup that waits on a DNS server is stood in for by this program's own getaddrinfo(), which
// comes before libc's: names ending in ".slow.test" sleep LATENCY_MS, then resolve to 127.0.0.1
// (through libc's getaddrinfo, numeric); other names go to libc. So the figures measure how many
// lookups tendril keeps in flight, not this machine's resolver.
#include <dlfcn.h>
#include <netdb.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tendril/realio.hpp"
#include "tendril/sched.hpp"

namespace {

std::atomic<int> latency_ms{0};

using GetaddrinfoFn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);

GetaddrinfoFn libc_getaddrinfo() {
  static const auto fn = reinterpret_cast<GetaddrinfoFn>(::dlsym(RTLD_NEXT, "getaddrinfo"));
  return fn;
}

bool slow(const char* node) {
  static constexpr char suffix[] = ".slow.test";
  const std::size_t n = node == nullptr ? 0 : std::strlen(node);
  return n >= sizeof suffix - 1 && std::strcmp(node + n - (sizeof suffix - 1), suffix) == 0;
}

int positive(const char* text, const char* what) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v <= 0 || v > 100000) {
    std::fprintf(stderr, "resolve_bench: %s must be a whole number from 1 to 100000, not '%s'\n",
                 what, text);
    std::exit(2);
  }
  return static_cast<int>(v);
}

}  // namespace

extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                           addrinfo** res) {
  if (!slow(node)) return libc_getaddrinfo()(node, service, hints, res);
  std::this_thread::sleep_for(std::chrono::milliseconds(latency_ms.load()));
  return libc_getaddrinfo()("127.0.0.1", service, hints, res);
}

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: resolve_bench N THREADS LATENCY_MS\n");
    return 2;
  }
  const int n = positive(argv[1], "N");
  tendril::LibevOptions options;
  options.threads = static_cast<unsigned>(positive(argv[2], "THREADS"));
  latency_ms = positive(argv[3], "LATENCY_MS");
  tendril::LibevHub hub(options);
  int wrong = 0;
  double seconds = 0;
  tendril::run(hub, [&] {
    const auto start = std::chrono::steady_clock::now();
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < n; ++i) {
      gs.push_back(tendril::spawn([&wrong, i] {
        if (tendril::resolve("host" + std::to_string(i) + ".slow.test") != "127.0.0.1") ++wrong;
      }));
    }
    tendril::joinall(gs);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  });
  if (wrong != 0) {
    std::fprintf(stderr, "resolve_bench: %d lookups gave another address than 127.0.0.1\n", wrong);
    return 1;
  }
  std::printf("seconds %.4f\n", seconds);
  return 0;
}
