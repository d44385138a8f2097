// SPDX-License-Identifier: Apache-2.0
// select [--hub=sim|libev]: gevent's select example (seeds::select_polling): gr1 and gr2 poll
// with select([], [], [], 2 s) while gr3 runs. On the simulated hub (the default) it takes
// microseconds of wall time; on the libev hub about 2 s.
#include <iostream>
#include <memory>
#include <string>

#include "seeds.hpp"
#include "tendril/realio.hpp"
#include "tendril/sim.hpp"

int main(int argc, char** argv) {
  const std::string hub_flag = argc == 2 ? argv[1] : "--hub=sim";
  std::unique_ptr<tendril::Hub> hub;
  if (argc <= 2 && hub_flag == "--hub=sim") {
    hub = std::make_unique<tendril::SimHub>();
  } else if (argc == 2 && hub_flag == "--hub=libev") {
    hub = std::make_unique<tendril::LibevHub>();
  } else {
    std::cerr << "usage: select [--hub=sim|--hub=libev]\n";
    return 2;
  }
  seeds::select_polling(std::cout, *hub);
  return 0;
}
