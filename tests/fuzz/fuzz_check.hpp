// SPDX-License-Identifier: Apache-2.0
// fuzz_check.hpp: what the fuzz targets in tests/fuzz/ share: a check that turns a broken
// property into a crash libFuzzer (or the corpus replay) reports.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace tendril::fuzz {

// check() aborts with `what` on stderr unless ok: the fuzzer saves the input as a finding.
inline void check(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "tendril fuzz check failed: %s\n", what.c_str());
  std::abort();
}

// printable() is s with control bytes and backslashes written as C escapes, cut to max_bytes, for
// failure messages (an input may hold NULs and escape sequences).
inline std::string printable(std::string_view s, std::size_t max_bytes = 2000) {
  std::string out;
  for (const char c : s.substr(0, max_bytes)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n\n";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return s.size() > max_bytes ? out + "..." : out;
}

// first_difference() is the first line where a and b differ, both versions, printable.
inline std::string first_difference(std::string_view a, std::string_view b) {
  std::size_t line = 1, start = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size() && a[i] == b[i]; ++i) {
    if (a[i] == '\n') {
      ++line;
      start = i + 1;
    }
  }
  auto line_of = [start](std::string_view s) {
    const std::string_view rest = s.substr(std::min(start, s.size()));
    return printable(rest.substr(0, rest.find('\n')));
  };
  return "line " + std::to_string(line) + ":\n  before: " + line_of(a) +
         "\n  after:  " + line_of(b);
}

// valid_utf8() says whether s is well-formed UTF-8 (no overlong forms, surrogates or code points
// past U+10FFFF): tendril-viz promises that of its SVG and JSON whatever the trace holds.
inline bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80             ? 1
                      : (c & 0xE0) == 0xC0 ? 2
                      : (c & 0xF0) == 0xE0 ? 3
                      : (c & 0xF8) == 0xF0 ? 4
                                           : 0;
    if (len == 0 || i + len > s.size()) return false;
    std::uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (std::size_t k = 1; k < len; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr std::uint32_t min_of[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_of[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    i += len;
  }
  return true;
}

}  // namespace tendril::fuzz
