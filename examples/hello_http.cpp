// SPDX-License-Identifier: Apache-2.0
// hello_http [PORT]: the seed's hello-world HTTP/1.0 server (seeds::hello_http_handler) on the
// real hub: each request sleeps 0.1 s (cooperatively) and answers "Hello World". With 200
// concurrent clients (`ab -n 200 -c 200 http://127.0.0.1:8000/`) all are answered in about
// 0.1 s, not 20 s. Stop it with Ctrl-C (SIGINT) or SIGTERM, which close the server cleanly.
//
// hello_http --hub=sim [CLIENTS]: the same server on the simulated hub, loaded by CLIENTS
// (default 200) concurrent simulated clients; prints how many were answered and the virtual time.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include "seeds.hpp"
#include "tendril/net.hpp"
#include "tendril/realio.hpp"
#include "tendril/sim.hpp"

namespace {

long parse(const char* text, long max) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  return (end == text || *end != '\0' || v <= 0 || v > max) ? -1 : v;
}

int usage() {
  std::cerr << "usage: hello_http [PORT]            (PORT: 1-65535, default 8000)\n"
               "       hello_http --hub=sim [CLIENTS] (CLIENTS: 1-100000, default 200)\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--hub=sim") {
    const long clients = argc == 3 ? parse(argv[2], 100000) : argc == 2 ? 200 : -1;
    if (clients < 0) return usage();
    tendril::SimHub hub;
    const seeds::HttpLoad load = seeds::hello_http_load(std::cout, hub, static_cast<int>(clients));
    return load.failed == 0 ? 0 : 1;
  }
  const long port = argc == 2 ? parse(argv[1], 65535) : argc == 1 ? 8000 : -1;
  if (port < 0) return usage();
  tendril::LibevHub hub;
  try {
    tendril::run(hub, [&] {
      tendril::StreamServer server(tendril::listen({"127.0.0.1", static_cast<std::uint16_t>(port)}),
                                   seeds::hello_http_handler, 10000);
      hub.signal_handler(SIGINT, [&] { server.stop(std::chrono::seconds(1)); });
      hub.signal_handler(SIGTERM, [&] { server.stop(std::chrono::seconds(1)); });
      std::cout << "serving on http://" << server.address().to_string() << "/ (Ctrl-C stops)"
                << std::endl;
      server.serve_forever();
    });
  } catch (const std::exception& e) {
    std::cerr << "hello_http: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
