// SPDX-License-Identifier: Apache-2.0
// tendril-viz: draws a tendril trace file as a flow graph (DOT, SVG, PNG, PDF) and/or exports it
// for Perfetto. Exit codes: 0 done, 2 bad arguments or a bad trace file, 1 rendering failed.
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "tendril/trace/trace_file.hpp"
#include "tendril/viz.hpp"

namespace {

constexpr const char* usage =
    "usage: tendril-viz TRACE [-o OUT.svg|.png|.pdf|.dot] [--perfetto OUT.json]\n"
    "                   [--from SEQ] [--to SEQ] [--from-time NS] [--to-time NS]\n"
    "                   [--no-collapse] [--max-switches N] [--title TEXT]\n"
    "       tendril-viz --diff PASSING.trace FAILING.trace [-o OUT.svg|.png|.pdf|.dot]\n"
    "                   [--context N] [--after N] [--title TEXT]\n";

constexpr const char* help =
    "\n"
    "Draws the context switches of a tendril run as a flow graph: one lane per greenlet (and\n"
    "one for the hub), a box for each stretch a greenlet runs, an arrow for every switch with\n"
    "its reason (sleep(0), Event.wait, Queue.get, timeout, kill, ...) and time; time runs down.\n"
    "\n"
    "TRACE is a trace file (JSON Lines, see trace/TRACE_FORMAT.md). Record one with\n"
    "tendril::trace::Tracer and save_trace(); 'bash examples/demo.sh' writes one for the\n"
    "foo/bar example, and a failing exploration writes one beside its schedule file.\n"
    "\n"
    "  -o OUT            the flow graph; the format comes from the extension:\n"
    "                    .svg .png .pdf (drawn through Graphviz) or .dot (DOT text with\n"
    "                    pinned positions: draw it with 'neato -n -Tsvg')\n"
    "  --perfetto OUT    Chrome Trace Event JSON, for long traces: open it in\n"
    "                    https://ui.perfetto.dev (one track per greenlet, flow arrows)\n"
    "  --from/--to SEQ   draw only switches with event numbers in [from, to]\n"
    "  --from-time/--to-time NS   ... or with hub times (ns) in that range\n"
    "  --no-collapse     draw repeated switch patterns in full (default: folded into a note)\n"
    "  --max-switches N  size guard: draw at most N switches and say what was cut (2000)\n"
    "  --title TEXT      the graph's title (default: the test's name and hub)\n"
    "\n"
    "  --diff A B        compare two runs of one test (a failing exploration saves its minimal\n"
    "                    schedule's trace and a passing neighbour's, .pass.trace): prints where\n"
    "                    they part ways and, with -o, draws them side by side from there\n"
    "  --context N       shared switches drawn before they part (6)\n"
    "  --after N         switches of each run drawn from where they part (24)\n"
    "\n"
    "examples:\n"
    "  tendril-viz foo_bar.trace -o foo_bar.svg\n"
    "  tendril-viz big.trace -o window.png --from 1000 --to 1200\n"
    "  tendril-viz big.trace --perfetto big.json\n"
    "  tendril-viz --diff x.min.pass.trace x.min.trace -o x.diff.svg\n";

[[noreturn]] void bad(const std::string& what) {
  std::fprintf(stderr, "tendril-viz: %s\n%s", what.c_str(), usage);
  std::exit(2);
}

template <class T>
T parse_number(std::string_view flag, std::string_view text) {
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    bad(std::string(flag) + " wants a whole number, got '" + std::string(text) + "'");
  }
  return v;
}

// load() reads a trace file, or exits 2 with the loader's message.
tendril::trace::Trace load(const std::string& path) {
  try {
    return tendril::trace::load_trace(path);
  } catch (const tendril::trace::TraceError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::exit(2);
  }
}

}  // namespace

int run(int argc, char** argv);

// main() turns anything thrown (bad_alloc on a huge trace included) into one line and exit 1.
int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr,
                 "tendril-viz: out of memory (the trace or the graph is too large; draw "
                 "a window with --from/--to)\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tendril-viz: %s\n", e.what());
  }
  return 1;
}

int run(int argc, char** argv) {
  std::string input, output, perfetto, diff_passing, diff_failing;
  bool diff = false;
  tendril::viz::FlowOptions options;
  tendril::viz::DiffOptions diff_options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) bad(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      std::printf("%s%s", usage, help);
      return 0;
    } else if (arg == "-o" || arg == "--output") {
      output = value();
    } else if (arg == "--perfetto") {
      perfetto = value();
    } else if (arg == "--from") {
      options.from_seq = parse_number<std::uint64_t>(arg, value());
    } else if (arg == "--to") {
      options.to_seq = parse_number<std::uint64_t>(arg, value());
    } else if (arg == "--from-time") {
      options.from_time_ns = parse_number<std::int64_t>(arg, value());
    } else if (arg == "--to-time") {
      options.to_time_ns = parse_number<std::int64_t>(arg, value());
    } else if (arg == "--no-collapse") {
      options.collapse_repeats = false;
    } else if (arg == "--max-switches") {
      options.max_switches = parse_number<std::size_t>(arg, value());
      if (options.max_switches == 0) bad("--max-switches must be at least 1");
    } else if (arg == "--title") {
      options.title = value();
      diff_options.title = options.title;
    } else if (arg == "--diff") {
      diff = true;
      diff_passing = value();
      diff_failing = value();
    } else if (arg == "--context") {
      diff_options.context = parse_number<std::size_t>(arg, value());
    } else if (arg == "--after") {
      diff_options.after = parse_number<std::size_t>(arg, value());
      if (diff_options.after == 0) bad("--after must be at least 1");
    } else if (!arg.empty() && arg[0] == '-') {
      bad("unknown option '" + std::string(arg) + "'");
    } else if (input.empty()) {
      input = arg;
    } else {
      bad("one trace file at a time (got '" + input + "' and '" + std::string(arg) + "')");
    }
  }
  if (diff) {
    if (!input.empty()) bad("--diff takes its two trace files itself (got also '" + input + "')");
    if (!perfetto.empty()) bad("--perfetto draws one trace, not a --diff");
    const tendril::trace::Trace passing = load(diff_passing);
    const tendril::trace::Trace failing = load(diff_failing);
    if (passing.test != failing.test) {
      std::fprintf(stderr,
                   "tendril-viz: warning: the traces are of different tests ('%s' and '%s')\n",
                   passing.test.c_str(), failing.test.c_str());
    }
    const tendril::trace::Parting parting = tendril::trace::part_ways(passing, failing);
    if (parting.identical) {
      std::printf("tendril-viz: the two runs make the same %zu switches\n", parting.common);
    } else {
      std::printf("tendril-viz: the runs agree for %zu switches, then\n  %s: %s\n  %s: %s\n",
                  parting.common, diff_passing.c_str(), parting.a.c_str(), diff_failing.c_str(),
                  parting.b.c_str());
    }
    if (output.empty()) return 0;
    try {
      tendril::viz::render_diff(passing, failing, output, diff_options);
      std::printf("tendril-viz: wrote the difference graph to %s\n", output.c_str());
    } catch (const tendril::viz::VizError& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return std::strstr(e.what(), "from its extension") != nullptr ? 2 : 1;
    }
    return 0;
  }
  if (input.empty()) bad("no trace file given");
  if (output.empty() && perfetto.empty())
    bad("nothing to write: give -o OUT and/or --perfetto OUT");
  const tendril::trace::Trace trace = load(input);
  try {
    if (!output.empty()) {
      tendril::viz::render_flow(trace, output, options);
      std::printf("tendril-viz: wrote the flow graph of %zu events to %s\n", trace.events.size(),
                  output.c_str());
    }
    if (!perfetto.empty()) {
      tendril::viz::save_perfetto(trace, perfetto);
      std::printf("tendril-viz: wrote Perfetto JSON to %s (open it in https://ui.perfetto.dev)\n",
                  perfetto.c_str());
    }
  } catch (const tendril::viz::VizError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    // An output name without a known extension is a bad request; anything else failed to render.
    return std::strstr(e.what(), "from its extension") != nullptr ? 2 : 1;
  }
  return 0;
}
