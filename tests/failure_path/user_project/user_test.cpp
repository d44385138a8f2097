// SPDX-License-Identifier: Apache-2.0
// Seven tests, six of which fail: what ctest must report, sharding variables or not.
#include <gtest/gtest.h>

TEST(User, Passes) { EXPECT_EQ(1 + 1, 2); }
TEST(User, Fails1) { EXPECT_EQ(1, 2); }
TEST(User, Fails2) { EXPECT_EQ(1, 2); }
TEST(User, Fails3) { EXPECT_EQ(1, 2); }
TEST(User, Fails4) { EXPECT_EQ(1, 2); }
TEST(User, Fails5) { EXPECT_EQ(1, 2); }
TEST(User, Fails6) { EXPECT_EQ(1, 2); }
