// SPDX-License-Identifier: Apache-2.0
// trace_fuzz.cpp: libFuzzer target for the trace file reader (tendril::trace::parse_trace,
// trace/TRACE_FORMAT.md) and for what tendril-viz does with a trace it read: the flow graph's DOT
// text, the Perfetto JSON, the side-by-side diff, and the text report of a run's last steps. Any
// input must either parse or throw TraceError naming the source; a parsed trace must survive
// format_trace() and parse_trace() unchanged, and the renderings must be valid UTF-8. Anything
// else (another exception, a crash, a hang, a sanitizer report) is a finding. Graphviz's own
// layout is not run: it is not tendril's code, and far too slow for fuzzing.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "tendril/trace.hpp"
#include "tendril/viz.hpp"

// LLVMFuzzerTestOneInput() runs one input through the trace reader and tendril-viz's renderings;
// libFuzzer and the corpus replay (replay_main.cpp) call it.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using tendril::fuzz::check;
  using tendril::fuzz::valid_utf8;
  namespace trace = tendril::trace;
  namespace viz = tendril::viz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  trace::Trace t;
  try {
    t = trace::parse_trace(text, "fuzz.trace");
  } catch (const trace::TraceError& e) {
    const std::string what = e.what();
    check(what.rfind("tendril: fuzz.trace:", 0) == 0,
          "error does not name the file: " + tendril::fuzz::printable(what));
    return 0;
  }
  // A TraceError out of this second parse escapes and is a finding too.
  const std::string formatted = trace::format_trace(t);
  const trace::Trace back = trace::parse_trace(formatted, "round-trip");
  check(back == t, "format/parse round trip changed " +
                       tendril::fuzz::first_difference(formatted, trace::format_trace(back)));

  (void)trace::last_steps(t, 3);
  // The first half of the run against the whole: the diff's "the run ends" side.
  trace::Trace half = t;
  half.events.resize(t.events.size() / 2);
  (void)trace::part_ways(half, t);
  check(valid_utf8(viz::diff_dot(half, t)), "diff_dot wrote invalid UTF-8");

  check(valid_utf8(viz::flow_dot(t)), "flow_dot wrote invalid UTF-8");
  // tendril-viz's window and size guard, with a small guard so that the cut is reached.
  viz::FlowOptions window;
  window.from_seq = 1;
  window.to_time_ns = t.events.empty() ? 0 : t.events.back().time_ns;
  window.collapse_repeats = false;
  window.max_switches = 4;
  check(valid_utf8(viz::flow_dot(t, window)), "flow_dot (window) wrote invalid UTF-8");

  std::ostringstream perfetto;
  viz::write_perfetto(t, perfetto);
  check(valid_utf8(perfetto.str()), "write_perfetto wrote invalid UTF-8");
  return 0;
}
