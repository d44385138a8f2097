// SPDX-License-Identifier: Apache-2.0
// tendril/trace/trace_file.hpp: the trace file format (JSON Lines, trace/TRACE_FORMAT.md): one
// header line, one line per event, one end line with the event count. Writing streams; loading
// validates everything and says what is wrong and where (origin:line: field).
#pragma once

#include <cstdint>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tendril/trace/events.hpp"

namespace tendril::trace {

// trace_format_version is the version this library writes and the only one it reads.
inline constexpr int trace_format_version = 1;

// TraceError reports a trace file that cannot be used; the message is
// "tendril: <origin>:<line>: <field>: <what>" (line and field when known).
class TraceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// write_trace_header(), write_trace_event() and write_trace_end() write a trace file a piece at
// a time (events in seq order from 0, then the end line with their count).
void write_trace_header(std::ostream& out, std::string_view hub, std::string_view test);
void write_trace_event(std::ostream& out, const TraceEvent& event);
void write_trace_end(std::ostream& out, std::uint64_t count);

// format_trace() renders a whole trace; parse_trace() reads one back, validating every line
// (origin names the text in errors). Throws TraceError.
std::string format_trace(const Trace& trace);
Trace parse_trace(std::string_view text, std::string_view origin);

// save_trace() writes a trace file (creating parent folders); load_trace() reads one. Both throw
// TraceError naming the path on any failure.
void save_trace(const Trace& trace, const std::string& path);
Trace load_trace(const std::string& path);
// load_trace() reads only a regular file of at most this many bytes (TraceError otherwise).
inline constexpr std::uint64_t max_trace_file_bytes = 4ULL << 30;
// parse_trace() keeps at most this many bytes of a string field (a name or a reason: they are for
// display): a longer one keeps its start and ends in " ... (N bytes)", so a hostile 200 MB name
// costs 4 KiB, and reading a trace back never cuts it again.
inline constexpr std::size_t max_trace_text_bytes = 4096;

// FlowRenderer draws a trace's flow graph to a file (tendril::viz::render_flow is one). explore()
// draws a failing schedule's flow graph next to its schedule file with the installed renderer;
// tendril::viz::install_flow_renderer() installs viz's. None is installed by default, so that
// programs that do not link Graphviz never load it.
using FlowRenderer = void (*)(const Trace& trace, const std::string& path);
void set_flow_renderer(FlowRenderer renderer) noexcept;
FlowRenderer flow_renderer() noexcept;

}  // namespace tendril::trace
