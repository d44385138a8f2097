// SPDX-License-Identifier: Apache-2.0
// file_check.hpp: the checks both loaders (schedules, traces) make before reading a file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace tendril::detail {

// file_problem() is why `path` must not be read as a `what` file ("schedule", "trace"): not a
// regular file (a FIFO or /dev/zero would read forever, a directory as empty), or larger than
// max_bytes; empty if it may be read (or does not exist: opening it then says so).
inline std::string file_problem(const std::string& path, std::uint64_t max_bytes,
                                const char* what) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return {};
  if (!std::filesystem::is_regular_file(status)) {
    return std::string("tendril: ") + what + " file " + path + " is not a regular file";
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > max_bytes) {
    return std::string("tendril: ") + what + " file " + path + " is " + std::to_string(size) +
           " bytes, over the limit of " + std::to_string(max_bytes);
  }
  return {};
}

}  // namespace tendril::detail
