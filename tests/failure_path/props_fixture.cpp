// SPDX-License-Identifier: Apache-2.0
// A user's property test binary that fails on purpose, with an input besides the schedule:
// failure_path_test.cpp runs it in a child process and pastes the replay command it prints.
// Not registered with ctest.
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <chrono>

#include "tendril/props.hpp"

using namespace std::chrono_literals;

// A lost update among a generated number of incrementing greenlets (FIFO never loses one).
TENDRIL_PROP(FixtureProps, LostUpdate, ()) {
  const int workers = *rc::gen::inRange(2, 6);
  const auto schedule = *tendril::props::schedules();
  tendril::props::check_under(schedule, [workers] {
    int counter = 0;
    std::vector<tendril::Ref<tendril::Greenlet>> all;
    for (int w = 0; w < workers; ++w) {
      all.push_back(tendril::spawn([&counter, w] {
        for (int i = 0; i < 2 * w; ++i) tendril::sleep(0s);  // FIFO finishes each in turn
        const int v = counter;
        tendril::sleep(0s);
        counter = v + 1;
      }));
    }
    tendril::joinall(all);
    RC_ASSERT(counter == workers);
  });
}
