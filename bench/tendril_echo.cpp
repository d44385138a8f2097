// SPDX-License-Identifier: Apache-2.0
// tendril_echo PORT: the tendril side of bench/net.sh's echo benchmark: a StreamServer on the
// real hub (LibevHub) whose handler echoes what it receives until the peer closes. Listens on
// 127.0.0.1:PORT (0 picks a free port), prints "serving on 127.0.0.1:PORT" and runs until
// SIGTERM or SIGINT.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "tendril/net.hpp"
#include "tendril/realio.hpp"

namespace {

void echo(tendril::Stream& s) {
  for (;;) {
    const std::string data = s.recv(4096);
    if (data.empty()) return;
    s.sendall(data);
  }
}

}  // namespace

int main(int argc, char** argv) {
  char* end = nullptr;
  const long port = argc == 2 ? std::strtol(argv[1], &end, 10) : -1;
  if (argc != 2 || *end != '\0' || port < 0 || port > 65535) {
    std::cerr << "usage: tendril_echo PORT   (0-65535; 0 picks a free port)\n";
    return 2;
  }
  tendril::LibevHub hub;
  try {
    tendril::run(hub, [&] {
      tendril::StreamServer server(tendril::listen({"127.0.0.1", static_cast<std::uint16_t>(port)}),
                                   echo, 100000);
      hub.signal_handler(SIGINT, [&] { server.stop(std::chrono::seconds(1)); });
      hub.signal_handler(SIGTERM, [&] { server.stop(std::chrono::seconds(1)); });
      std::cout << "serving on " << server.address().to_string() << std::endl;
      server.serve_forever();
    });
  } catch (const std::exception& e) {
    std::cerr << "tendril_echo: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
