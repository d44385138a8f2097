# SPDX-License-Identifier: Apache-2.0
# tendril-config.cmake: the installed CMake package.
#
#   find_package(tendril 0.1 CONFIG REQUIRED COMPONENTS sim realio tls viz props)
#   target_link_libraries(app PRIVATE tendril::sim tendril::realio)
#
# Components: sched (the greenlet core), trace, sim, realio (LibevHub), tls (TLS over tendril
# streams, eventlet's wrap_ssl), viz (Graphviz), props (RapidCheck; installed only from a build
# with tests on). Each brings the components it needs and finds its own dependencies: sched,
# trace and sim need only Boost.Context; realio libev (FindLibev.cmake, installed beside this
# file) and Threads; tls OpenSSL 3; viz Graphviz through pkg-config; props RapidCheck and
# GoogleTest. Without COMPONENTS, every installed component is loaded.
include(CMakeFindDependencyMacro)

set(_tendril_order sched trace sim realio tls viz props)
set(_tendril_needs_sched "")
set(_tendril_needs_trace sched)
set(_tendril_needs_sim sched trace)
set(_tendril_needs_realio sched)
set(_tendril_needs_tls sched)
set(_tendril_needs_viz sched trace)
set(_tendril_needs_props sched trace sim)

set(_tendril_wanted ${tendril_FIND_COMPONENTS})
if(NOT _tendril_wanted)
  foreach(_c IN LISTS _tendril_order)
    if(EXISTS "${CMAKE_CURRENT_LIST_DIR}/tendril-${_c}-targets.cmake")
      list(APPEND _tendril_wanted ${_c})
    endif()
  endforeach()
endif()
foreach(_c IN LISTS _tendril_wanted)
  if(NOT _c IN_LIST _tendril_order)
    set(tendril_FOUND FALSE)
    set(tendril_NOT_FOUND_MESSAGE
      "tendril has no component '${_c}' (components: ${_tendril_order})")
    return()
  endif()
  list(APPEND _tendril_wanted ${_tendril_needs_${_c}})
endforeach()

foreach(_c IN LISTS _tendril_order)
  if(NOT _c IN_LIST _tendril_wanted OR TARGET tendril::${_c})
    continue()
  endif()
  if(NOT EXISTS "${CMAKE_CURRENT_LIST_DIR}/tendril-${_c}-targets.cmake")
    if(tendril_FIND_REQUIRED_${_c} OR NOT tendril_FIND_COMPONENTS)
      set(tendril_FOUND FALSE)
      set(tendril_NOT_FOUND_MESSAGE "tendril's component '${_c}' is not installed here "
        "(props is installed only from a build with TENDRIL_BUILD_TESTS=ON)")
      return()
    endif()
    set(tendril_${_c}_FOUND FALSE)
    continue()
  endif()
  if(_c STREQUAL "sched")
    find_dependency(Boost 1.74 COMPONENTS context)
  elseif(_c STREQUAL "realio")
    list(PREPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")
    find_dependency(Libev)
    list(POP_FRONT CMAKE_MODULE_PATH)
    find_dependency(Threads)
  elseif(_c STREQUAL "tls")
    find_dependency(OpenSSL 3)
  elseif(_c STREQUAL "viz")
    find_dependency(PkgConfig)
    if(NOT TARGET PkgConfig::GRAPHVIZ)
      pkg_check_modules(GRAPHVIZ REQUIRED IMPORTED_TARGET libgvc libcgraph)
    endif()
  elseif(_c STREQUAL "props")
    find_dependency(rapidcheck CONFIG)
    find_dependency(GTest)
  endif()
  include("${CMAKE_CURRENT_LIST_DIR}/tendril-${_c}-targets.cmake")
  set(tendril_${_c}_FOUND TRUE)
endforeach()

include("${CMAKE_CURRENT_LIST_DIR}/TendrilTesting.cmake")
