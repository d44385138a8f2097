# TendrilTesting.cmake: CMake helpers for projects that test with tendril (installed with the
# package and included by tendril-config.cmake; tendril's own tests use it too).
include_guard(GLOBAL)
include(GoogleTest)

# tendril_discover_tests(<target> [gtest_discover_tests arguments...]) registers a GoogleTest
# binary's tests with CTest, one process per test, as gtest_discover_tests does, and unsets
# GoogleTest's shard variables for each of them: GTEST_TOTAL_SHARDS/GTEST_SHARD_INDEX inherited
# from a CI environment would otherwise send most single-test processes to "another shard",
# where they run nothing and pass. (tendril's explore_gtest.hpp also fails such a process at run
# time.) Shard explorations with TENDRIL_EXPLORE_TEST instead, or set the shard variables on the
# ctest command line of one shard's job (ctest -I) rather than in its environment.
function(tendril_discover_tests target)
  cmake_parse_arguments(T "" "" "PROPERTIES" ${ARGN})
  gtest_discover_tests(${target} ${T_UNPARSED_ARGUMENTS} PROPERTIES ${T_PROPERTIES}
    ENVIRONMENT_MODIFICATION "GTEST_TOTAL_SHARDS=unset:;GTEST_SHARD_INDEX=unset:")
endfunction()
