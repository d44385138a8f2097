# SPDX-License-Identifier: Apache-2.0
# TendrilPackaging.cmake: Debian packages through CPack's DEB generator.
#
#   cmake -S . -B build && cmake --build build && (cd build && cpack -G DEB)
#   apt install ./tendril-dev_*.deb          # everything in one package
#
#   (cd build && cpack -G DEB --config CPackConfig-components.cmake)
#   apt install ./tendril-{sched,trace,sim}-dev_*.deb   # or only the components wanted
#
# The default configuration (CPackConfig.cmake) makes one package, tendril-dev: every component
# below and tendril-viz; Depends on the Debian packages of every component's dependencies, so that
# apt installs it alone. It Provides, Conflicts with and Replaces the component packages.
#
# CPackConfig-components.cmake makes one package per component (installed under /usr), each with
# /usr/share/doc/<package>/copyright:
#   tendril-sched-dev   headers, library, the CMake package's config files, tendril-sched.pc;
#                       Depends libboost-context-dev
#   tendril-trace-dev   Depends tendril-sched-dev
#   tendril-sim-dev     Depends tendril-sched-dev, tendril-trace-dev
#   tendril-realio-dev  Depends tendril-sched-dev, libev-dev
#   tendril-tls-dev     Depends tendril-sched-dev, libssl-dev (>= 3)
#   tendril-viz-dev     Depends tendril-sched-dev, tendril-trace-dev, libgraphviz-dev
#   tendril-props-dev   Depends tendril-sim-dev, librapidcheck-dev, libgtest-dev (from a build with
#                       TENDRIL_BUILD_PROPS=ON)
#   tendril-viz         the tendril-viz tool; Depends computed by dpkg-shlibdeps (a static build)
#                       or tendril-viz-dev (a shared build, whose libraries it holds)
# tendril's own Depends are on the same version (= 0.1.0). tests/packaging/deb.sh checks them.
set(tendril_deb_version ${PROJECT_VERSION})
set(CPACK_PACKAGE_NAME tendril)
set(CPACK_PACKAGE_VENDOR tendril)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "gevent's programming model for C++20")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(TENDRIL_DEB_MAINTAINER "tendril maintainers <tendril@example.org>" CACHE STRING
  "Maintainer field of the Debian packages (cpack -G DEB)")
set(CPACK_PACKAGE_CONTACT "${TENDRIL_DEB_MAINTAINER}")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL OFF)  # ON in CPackConfig-components.cmake
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # <package>_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.org/tendril")

# tendril_deb(COMPONENT PACKAGE SUMMARY DEPENDS...): one component's package. Its Depends that
# are not tendril's own go into tendril-dev's too.
set(tendril_deb_components)
set(tendril_deb_packages)
set(tendril_deb_external)
function(tendril_deb component package summary)
  string(TOUPPER ${component} c)
  set(CPACK_DEBIAN_${c}_PACKAGE_NAME ${package} PARENT_SCOPE)
  string(REPLACE ";" ", " depends "${ARGN}")
  set(CPACK_DEBIAN_${c}_PACKAGE_DEPENDS "${depends}" PARENT_SCOPE)
  set(CPACK_COMPONENT_${c}_DESCRIPTION "tendril: ${summary}" PARENT_SCOPE)
  set(tendril_deb_components ${tendril_deb_components} ${component} PARENT_SCOPE)
  set(tendril_deb_packages ${tendril_deb_packages} ${package} PARENT_SCOPE)
  set(external ${tendril_deb_external})
  foreach(dep IN LISTS ARGN)
    if(NOT dep MATCHES "^tendril-")
      list(APPEND external "${dep}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES external)
  set(tendril_deb_external ${external} PARENT_SCOPE)
  install(FILES ${PROJECT_SOURCE_DIR}/LICENSE RENAME copyright
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${package} COMPONENT ${component})
endfunction()

set(v "(= ${tendril_deb_version})")
tendril_deb(sched tendril-sched-dev
  "the greenlet core, the Hub seam and the primitives (headers, library, CMake package)"
  "libboost-context-dev (>= 1.74)")
tendril_deb(trace tendril-trace-dev "schedule files, record and replay, flow traces"
  "tendril-sched-dev ${v}")
tendril_deb(sim tendril-sim-dev "SimHub: virtual time, policies, explore()"
  "tendril-sched-dev ${v}" "tendril-trace-dev ${v}")
if(TENDRIL_BUILD_REALIO)
  tendril_deb(realio tendril-realio-dev "LibevHub: the real hub on libev"
    "tendril-sched-dev ${v}" libev-dev)
endif()
if(TENDRIL_BUILD_TLS)
  tendril_deb(tls tendril-tls-dev "TLS over tendril streams with OpenSSL (eventlet's wrap_ssl)"
    "tendril-sched-dev ${v}" "libssl-dev (>= 3)")
endif()
if(TENDRIL_BUILD_VIZ)
  tendril_deb(viz tendril-viz-dev "flow graphs through Graphviz, Perfetto export"
    "tendril-sched-dev ${v}" "tendril-trace-dev ${v}" libgraphviz-dev)
  if(BUILD_SHARED_LIBS)
    tendril_deb(viz_tool tendril-viz "tendril-viz, which draws trace files as flow graphs"
      "tendril-viz-dev ${v}")
  else()
    # Linked statically against tendril: dpkg-shlibdeps names the shared libraries it needs
    # (Graphviz's, Boost.Context's, the C++ runtime's).
    tendril_deb(viz_tool tendril-viz "tendril-viz, which draws trace files as flow graphs")
    set(CPACK_DEBIAN_VIZ_TOOL_PACKAGE_SHLIBDEPS ON)
  endif()
  set(CPACK_DEBIAN_VIZ_TOOL_PACKAGE_SECTION devel)
endif()
if(TENDRIL_BUILD_PROPS)
  tendril_deb(props tendril-props-dev "RapidCheck properties over schedules (GoogleTest)"
    "tendril-sim-dev ${v}" librapidcheck-dev libgtest-dev)
endif()
# tendril-dev, the default: everything in one package.
set(tendril_deb_all)
foreach(package IN LISTS tendril_deb_packages)
  list(APPEND tendril_deb_all "${package} ${v}")
endforeach()
string(REPLACE ";" ", " tendril_deb_all "${tendril_deb_all}")
string(REPLACE ";" ", " tendril_deb_external "${tendril_deb_external}")
set(CPACK_DEBIAN_PACKAGE_NAME tendril-dev)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "gevent's programming model for C++20: every component, headers, libraries, CMake and pkg-config files, tendril-viz")
set(CPACK_DEBIAN_PACKAGE_DEPENDS "${tendril_deb_external}")
set(CPACK_DEBIAN_PACKAGE_PROVIDES "${tendril_deb_all}")
string(REPLACE " ${v}" "" tendril_deb_names "${tendril_deb_all}")
set(CPACK_DEBIAN_PACKAGE_CONFLICTS "${tendril_deb_names}")
set(CPACK_DEBIAN_PACKAGE_REPLACES "${tendril_deb_names}")
if(TENDRIL_BUILD_VIZ AND NOT BUILD_SHARED_LIBS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # tendril-viz's shared libraries
endif()
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE RENAME copyright
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/tendril-dev COMPONENT dev)
set(CPACK_COMPONENTS_ALL ${tendril_deb_components} dev)
include(CPack)
# The per-component packages: the same configuration with component installation on.
file(WRITE ${PROJECT_BINARY_DIR}/CPackConfig-components.cmake
  "# Generated by cmake/TendrilPackaging.cmake: one Debian package per component.\n"
  "include(\"\${CMAKE_CURRENT_LIST_DIR}/CPackConfig.cmake\")\n"
  "set(CPACK_DEB_COMPONENT_INSTALL ON)\n"
  "set(CPACK_COMPONENTS_ALL ${tendril_deb_components})\n"
  "unset(CPACK_DEBIAN_PACKAGE_DEPENDS)\n"
  "unset(CPACK_DEBIAN_PACKAGE_PROVIDES)\n"
  "unset(CPACK_DEBIAN_PACKAGE_CONFLICTS)\n"
  "unset(CPACK_DEBIAN_PACKAGE_REPLACES)\n"
  "unset(CPACK_DEBIAN_PACKAGE_SHLIBDEPS)\n")
