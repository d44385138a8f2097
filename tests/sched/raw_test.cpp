// SPDX-License-Identifier: Apache-2.0
// RawGreenlet: the greenlet library's symmetric switch, with no hub.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "tendril/sched.hpp"

using tendril::RawGreenlet;

// The seed's gr1/gr2 example prints 12, 56, 34; 78 never runs because gr2 is never resumed.
TEST(RawGreenlet, SeedSwitchExample) {
  std::vector<int> out;
  RawGreenlet* gr2_ptr = nullptr;
  RawGreenlet* gr1_ptr = nullptr;
  RawGreenlet gr1([&] {
    out.push_back(12);
    gr2_ptr->switch_to();
    out.push_back(34);
  });
  RawGreenlet gr2([&] {
    out.push_back(56);
    gr1_ptr->switch_to();
    out.push_back(78);
  });
  gr1_ptr = &gr1;
  gr2_ptr = &gr2;
  gr1.switch_to();
  EXPECT_EQ(out, (std::vector<int>{12, 56, 34}));
  EXPECT_TRUE(gr1.dead());
  EXPECT_FALSE(gr2.dead());
  EXPECT_EQ(RawGreenlet::current(), nullptr);
}

// An exception escaping a raw greenlet propagates to its parent's switch.
TEST(RawGreenlet, ExceptionPropagatesToParent) {
  RawGreenlet g([] { throw std::runtime_error("raw boom"); });
  EXPECT_THROW(g.switch_to(), std::runtime_error);
  EXPECT_TRUE(g.dead());
  EXPECT_THROW(g.switch_to(), tendril::UsageError);
}

// Destroying an unfinished raw greenlet unwinds its stack, running destructors.
TEST(RawGreenlet, DestroyingUnfinishedUnwinds) {
  bool unwound = false;
  {
    struct Guard {
      bool* flag;
      ~Guard() { *flag = true; }
    };
    RawGreenlet* outer_ptr = nullptr;
    RawGreenlet* inner_ptr = nullptr;
    // outer starts inner; inner switches back to outer, which finishes and returns to the thread:
    // inner stays suspended, holding a Guard.
    RawGreenlet outer([&] { inner_ptr->switch_to(); });
    RawGreenlet inner([&] {
      Guard guard{&unwound};
      outer_ptr->switch_to();
    });
    outer_ptr = &outer;
    inner_ptr = &inner;
    outer.switch_to();
    EXPECT_TRUE(outer.dead());
    EXPECT_FALSE(inner.dead());
    EXPECT_FALSE(unwound);
  }
  EXPECT_TRUE(unwound);
}
