# SPDX-License-Identifier: Apache-2.0
# FindLibev: Debian's libev-dev ships <ev.h> and libev.so with neither a .pc file nor a CMake
# config. Defines Libev::libev.
find_path(LIBEV_INCLUDE_DIR ev.h)
find_library(LIBEV_LIBRARY NAMES ev)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Libev
  REQUIRED_VARS LIBEV_LIBRARY LIBEV_INCLUDE_DIR
  REASON_FAILURE_MESSAGE "install Debian's libev-dev (tests/install-deps.sh does)")
if(Libev_FOUND AND NOT TARGET Libev::libev)
  add_library(Libev::libev UNKNOWN IMPORTED)
  set_target_properties(Libev::libev PROPERTIES
    IMPORTED_LOCATION "${LIBEV_LIBRARY}" INTERFACE_INCLUDE_DIRECTORIES "${LIBEV_INCLUDE_DIR}")
endif()
