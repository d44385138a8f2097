// SPDX-License-Identifier: Apache-2.0
// tendril/viz.hpp: flow graphs of traces (tendril/trace/events.hpp), like the gevent tutorial's
// flow figure: one lane per greenlet (and one for the hub), a node for each stretch a greenlet
// runs between switches, an arrow for every switch labelled with its reason and time, time
// running downward. Rendered through Graphviz's C library to DOT, SVG, PNG or PDF; and exported
// as Chrome Trace Event JSON for Perfetto (ui.perfetto.dev) for long traces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>

#include "tendril/trace/events.hpp"

namespace tendril::viz {

// VizError reports what cannot be drawn or written: an unknown output format, Graphviz missing
// its plugins, a file that cannot be written.
class VizError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// FlowOptions picks what part of a trace a flow graph shows.
struct FlowOptions {
  // Only switches with from_seq <= seq <= to_seq (event sequence numbers) are drawn.
  std::optional<std::uint64_t> from_seq, to_seq;
  // Only switches with from_time_ns <= time <= to_time_ns (hub time) are drawn.
  std::optional<std::int64_t> from_time_ns, to_time_ns;
  // collapse_repeats folds a block of switches repeated three or more times in a row (a
  // ping-pong loop) into its first occurrence and a note saying how often it repeats.
  bool collapse_repeats = true;
  // max_switches is the size guard: beyond it the graph is cut and a note says what was left
  // out, so a million-event trace never reaches Graphviz whole.
  std::size_t max_switches = 2000;
  // title heads the graph; empty: the trace's test name and hub.
  std::string title;
};

// flow_dot() is the flow graph as DOT text with every node's position pinned (lane = column,
// switch = row), so drawing takes time linear in its size; the same trace and options give the
// same bytes. To draw it with Graphviz's tools: `neato -n -Tsvg flow.dot -o flow.svg`.
std::string flow_dot(const trace::Trace& trace, const FlowOptions& options = {});

// DiffOptions picks the part of two runs a difference graph shows.
struct DiffOptions {
  std::size_t context = 6;  // shared switches shown before the runs part ways (grey)
  std::size_t after = 24;   // switches shown of each run from where they part ways
  std::string title;        // empty: the test's name, its failure, and where the runs part
};

// diff_dot() draws two runs of one test side by side (a passing run on the left, a failing one
// on the right, each with its own lanes, rows aligned): the last shared switches in grey, a red
// rule where they part ways (trace::part_ways), and what each did next, failures and choices
// away from FIFO marked as in flow_dot(). Pinned positions, like flow_dot().
std::string diff_dot(const trace::Trace& passing, const trace::Trace& failing,
                     const DiffOptions& options = {});
// render_diff() writes diff_dot() to path, in the format its extension names (as render_flow).
void render_diff(const trace::Trace& passing, const trace::Trace& failing, const std::string& path,
                 const DiffOptions& options = {});

// render_dot() lays out DOT text and writes it to path in format ("svg", "png", "pdf", ...):
// with the positions it gives when its nodes are pinned (pos="x,y!", as flow_dot() writes them;
// Graphviz's "nop" layout, like `neato -n`), otherwise with the dot layout. Throws VizError with
// Graphviz's own message on failure.
void render_dot(const std::string& dot, const std::string& format, const std::string& path);

// render_flow() writes the flow graph to path, in the format its extension names: .dot (the DOT
// text, no layout), .svg, .png or .pdf. Throws VizError for any other extension.
void render_flow(const trace::Trace& trace, const std::string& path,
                 const FlowOptions& options = {});

// write_perfetto() writes the trace as Chrome Trace Event JSON: one track (tid) per greenlet
// and one for the hub, named; a slice for every stretch a greenlet runs; a flow arrow for every
// switch. On SimHub, whose run bursts take no virtual time, ts counts switches (1 us each) and
// the virtual time is in each slice's args; on LibevHub ts is the hub's time in microseconds.
void write_perfetto(const trace::Trace& trace, std::ostream& out);
// save_perfetto() is write_perfetto() to a file; throws VizError if it cannot be written.
void save_perfetto(const trace::Trace& trace, const std::string& path);

// install_flow_renderer() makes explore() (tendril/explore.hpp) draw the flow graph of a failing
// schedule as an SVG next to its schedule and trace files. Call it once, e.g. in a test's main().
void install_flow_renderer() noexcept;

}  // namespace tendril::viz
