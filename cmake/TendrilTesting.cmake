# SPDX-License-Identifier: Apache-2.0
# TendrilTesting.cmake: CMake helpers for projects that test with tendril (installed with the
# package and included by tendril-config.cmake; tendril's own tests use it too).
include_guard(GLOBAL)
include(GoogleTest)

# tendril_discover_tests(<target> [gtest_discover_tests arguments...]) registers a GoogleTest
# binary's tests with CTest, one process per test, as gtest_discover_tests does, and unsets
# GoogleTest's shard variables for each of them: GTEST_TOTAL_SHARDS/GTEST_SHARD_INDEX inherited
# from a CI environment would otherwise send most single-test processes to "another shard",
# where they run nothing and pass. (tendril's explore_gtest.hpp also fails such a process at run
# time.) Shard explorations with TENDRIL_EXPLORE_TEST instead. It sets each test's
# ENVIRONMENT_MODIFICATION property (use ENVIRONMENT for other variables).
function(tendril_discover_tests target)
  cmake_parse_arguments(T "" "TEST_LIST" "" ${ARGN})
  set(list_var ${target}_TESTS)
  if(T_TEST_LIST)
    set(list_var ${T_TEST_LIST})
  endif()
  gtest_discover_tests(${target} ${ARGN})
  # gtest_discover_tests splits every property value at ';' (CMake 3.25's GoogleTestAddTests), so
  # a two-entry ENVIRONMENT_MODIFICATION cannot go through its PROPERTIES: set it from a file
  # CTest reads after the discovered tests, when their names are known.
  set(file "${CMAKE_CURRENT_BINARY_DIR}/${target}_tendril_unset_shards.cmake")
  file(WRITE "${file}"
    "if(DEFINED ${list_var})\n"
    "  set_tests_properties(\${${list_var}} PROPERTIES ENVIRONMENT_MODIFICATION\n"
    "    \"GTEST_TOTAL_SHARDS=unset:;GTEST_SHARD_INDEX=unset:\")\n"
    "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${file}")
endfunction()
