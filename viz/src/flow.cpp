// SPDX-License-Identifier: Apache-2.0
// flow.cpp: flow graphs (DOT) and Perfetto export of traces.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "tendril/viz.hpp"

namespace tendril::viz {
namespace {

using trace::EventKind;
using trace::Trace;

// Switch is one context switch with what the graph says about it.
struct Switch {
  std::uint64_t seq = 0;
  std::int64_t time_ns = 0;
  std::uint64_t from = 0, to = 0;  // 0: the hub
  std::string reason;
  std::string object;        // what `from` blocked on, if it named it
  std::uint64_t holder = 0;  // who held that object (a Lock's holder), 0: nobody named
  std::string choice;        // a choice away from FIFO that led to this switch ("ready 2 of 3")
  std::string failure;       // for `from`'s exit: the exception it died of
  std::string fault;         // network faults that took effect just before it
  bool same_as(const Switch& o) const {
    return from == o.from && to == o.to && reason == o.reason && object == o.object &&
           holder == o.holder && choice.empty() && o.choice.empty() && failure.empty() &&
           o.failure.empty() && fault.empty() && o.fault.empty();
  }
};

// failed_exit() says whether an exit event's reason is an exception (not a value or a kill).
bool failed_exit(const std::string& reason) {
  return reason != "value" && reason != "GreenletExit";
}

std::vector<Switch> switches_of(const Trace& t) {
  std::vector<Switch> out;
  struct Blocked {
    std::string name;
    std::uint64_t holder;
  };
  std::map<std::uint64_t, Blocked> blocked_on;  // greenlet -> its last block
  std::map<std::uint64_t, std::string> failed;  // greenlet -> the exception it died of
  std::string choice;                           // a choice away from FIFO not yet shown on a switch
  std::string fault;                            // network faults not yet shown on a switch
  for (const auto& e : t.events) {
    if (e.kind == EventKind::fault) {
      fault += (fault.empty() ? "" : "\n") + ("network " + e.reason + ": " + e.name);
      continue;
    }
    if (e.kind == EventKind::block) {
      blocked_on[e.greenlet] = {e.name, e.other};
    } else if (e.kind == EventKind::choice) {
      if (e.answer != 0) {
        choice = e.reason == "random"
                     ? "drew " + std::to_string(e.answer) + " of " + std::to_string(e.n)
                     : "chose " + std::to_string(e.answer + 1) + " of " + std::to_string(e.n) +
                           " (not FIFO)";
      }
    } else if (e.kind == EventKind::exit) {
      if (failed_exit(e.reason)) failed[e.greenlet] = e.reason;
    } else if (e.kind == EventKind::switch_) {
      Switch s{e.seq, e.time_ns, e.greenlet, e.other, e.reason, {}, 0, {}, {}, {}};
      if (e.greenlet != 0) {
        auto it = blocked_on.find(e.greenlet);
        if (it != blocked_on.end()) {
          s.object = std::move(it->second.name);
          s.holder = it->second.holder;
          blocked_on.erase(it);
        }
        if (e.reason == "exit") {
          auto f = failed.find(e.greenlet);
          if (f != failed.end()) s.failure = f->second;
        }
      }
      s.choice = std::exchange(choice, {});
      s.fault = std::exchange(fault, {});
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::string format_time(std::int64_t ns) {
  char buf[64];
  const double v = static_cast<double>(ns);
  if (ns < 1000 && ns > -1000) {
    std::snprintf(buf, sizeof buf, "%" PRId64 " ns", ns);
  } else if (ns < 1000000 && ns > -1000000) {
    std::snprintf(buf, sizeof buf, "%.1f us", v / 1e3);
  } else if (ns < 1000000000 && ns > -1000000000) {
    std::snprintf(buf, sizeof buf, "%.3f ms", v / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.3f s", v / 1e9);
  }
  return buf;
}

// quote() makes a DOT string literal.
// utf8() is s with every byte that does not belong to a valid UTF-8 sequence replaced by U+FFFD,
// cut to at most max_bytes (then "..."): names come from traces, which may hold anything, and
// SVG must be well-formed XML, JSON valid UTF-8.
std::string utf8(const std::string& s, std::size_t max_bytes = 4096) {
  std::string out;
  out.reserve(std::min(s.size(), max_bytes) + 3);
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    if (out.size() >= max_bytes) {
      out += "...";
      break;
    }
    const unsigned char c = p[i];
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len != 0 && i + len <= n;
    for (std::size_t k = 1; ok && k < len; ++k) {
      ok = (p[i + k] & 0xC0) == 0x80;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // No overlong forms, no surrogates, nothing past U+10FFFF.
    static constexpr std::uint32_t min_of[] = {0, 0, 0x80, 0x800, 0x10000};
    ok = ok && cp >= min_of[len] && !(cp >= 0xD800 && cp <= 0xDFFF) && cp <= 0x10FFFF;
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string quote(const std::string& text) {
  const std::string s = utf8(text);
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) >= 0x20) {
      out += c;
    }
  }
  return out + "\"";
}

// Item is a row of the graph: a switch, or a note (repeats folded, or the cut).
struct Item {
  const Switch* sw = nullptr;
  std::string note;
};

std::vector<Item> collapse(const std::vector<Switch>& s, bool enabled) {
  std::vector<Item> out;
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    std::size_t best_len = 0, best_reps = 1;
    if (enabled) {
      for (std::size_t len = 1; len <= 16 && i + 3 * len <= n; ++len) {
        std::size_t reps = 1;
        for (;;) {
          const std::size_t at = i + reps * len;
          if (at + len > n) break;
          bool same = true;
          for (std::size_t k = 0; k < len && same; ++k) same = s[at + k].same_as(s[i + k]);
          if (!same) break;
          ++reps;
        }
        if (reps >= 3 && reps * len > best_reps * best_len) {
          best_len = len;
          best_reps = reps;
        }
      }
    }
    if (best_len == 0) {
      out.push_back({&s[i], {}});
      ++i;
      continue;
    }
    for (std::size_t k = 0; k < best_len; ++k) out.push_back({&s[i + k], {}});
    const Switch& first = s[i + best_len];
    const Switch& last = s[i + best_reps * best_len - 1];
    std::string note = "x " + std::to_string(best_reps - 1) + " more: ";
    note += best_len == 1 ? std::string("the switch above repeats")
                          : "the " + std::to_string(best_len) + " switches above repeat";
    note += "\nseq " + std::to_string(first.seq) + ".." + std::to_string(last.seq) + ", " +
            format_time(first.time_ns) + " .. " + format_time(last.time_ns);
    out.push_back({nullptr, std::move(note)});
    i += best_reps * best_len;
  }
  return out;
}

// Names is Trace::greenlet_name() for every greenlet at once (that one searches the events).
class Names {
 public:
  explicit Names(const Trace& t) {
    for (const auto& e : t.events) {
      if (e.kind == EventKind::spawn && !e.name.empty()) names_.emplace(e.greenlet, e.name);
    }
  }
  std::string operator()(std::uint64_t id) const {
    if (id == 0) return "hub";
    auto it = names_.find(id);
    if (it != names_.end()) return it->second;
    return id == 1 ? std::string("main") : "greenlet-" + std::to_string(id);
  }

 private:
  std::map<std::uint64_t, std::string> names_;
};

const char* edge_color(const Switch& s) {
  if (!s.failure.empty() || !s.fault.empty() || s.reason == "kill") return "#c5221f";
  if (!s.choice.empty()) return "#8430ce";  // a choice away from FIFO: purple
  if (s.reason == "timeout") return "#e37400";
  if (s.reason == "exit") return "#5f6368";
  return s.to == 0 ? "#1a73e8" : "#188038";  // greenlet -> hub blue, hub -> greenlet green
}

}  // namespace

namespace {

constexpr int lane_width = 170;  // points
constexpr int row_height = 46;

// used_lanes() is the hub and the greenlets taking part in a shown switch, the hub first, then
// greenlets in spawn order (then any others in order of appearance).
std::vector<std::uint64_t> used_lanes(const Trace& t, const std::vector<Item>& items) {
  // Only lanes that take part in a shown switch are drawn (a window may leave some out). Linear
  // in the trace: a server's trace may hold a million greenlets, of which a window shows few.
  std::set<std::uint64_t> shown;
  for (const Item& it : items) {
    if (it.sw != nullptr) {
      shown.insert(it.sw->from);
      shown.insert(it.sw->to);
    }
  }
  std::vector<std::uint64_t> used;
  std::set<std::uint64_t> placed;
  auto place = [&](std::uint64_t id) {
    if (shown.count(id) != 0 && placed.insert(id).second) used.push_back(id);
  };
  place(0);
  for (const auto& e : t.events) {
    if (e.kind == EventKind::spawn) place(e.greenlet);
  }
  for (const Item& it : items) {
    if (it.sw != nullptr) {
      place(it.sw->from);
      place(it.sw->to);
    }
  }
  return used;
}

std::string pos(int x, long long row) {
  return "\"" + std::to_string(x) + "," + std::to_string(-row * row_height) + "!\"";
}

// draw_panel() writes one run's lanes and switches: lanes from x0 to the right, node names
// prefixed with `prefix`, rows from 1; rows up to `dim_rows` are drawn grey (context).
void draw_panel(std::ostream& out, const Trace& t, const std::vector<Item>& items,
                const std::vector<std::uint64_t>& used, int x0, const std::string& prefix,
                std::size_t dim_rows = 0) {
  const Names name_of(t);
  std::map<std::uint64_t, int> column;
  for (std::size_t i = 0; i < used.size(); ++i)
    column[used[i]] = x0 + static_cast<int>(i) * lane_width;
  // Lane headers across the top.
  for (std::uint64_t id : used) {
    out << "  " << prefix << "lane_" << id << " [shape=plaintext, style=\"\", fontsize=12, label="
        << quote(id == 0 ? "hub" : "#" + std::to_string(id) + " " + name_of(id))
        << ", width=1.6, pos=" << pos(column[id], 0) << "];\n";
  }
  std::map<std::uint64_t, std::string> current;  // lane -> its latest node
  for (std::uint64_t id : used) current[id] = prefix + "lane_" + std::to_string(id);
  std::size_t row = 0;
  for (const Item& it : items) {
    ++row;
    const std::string node = prefix + "n_" + std::to_string(row - 1);
    if (it.sw == nullptr) {
      const int middle =
          x0 + static_cast<int>(used.size() > 0 ? used.size() - 1 : 0) * lane_width / 2;
      out << "  " << node << " [shape=note, style=filled, fillcolor=\"#fef7e0\", color=\"#b06000\","
          << " fixedsize=false, label=" << quote(it.note) << ", pos=" << pos(middle, row) << "];\n";
      continue;
    }
    const Switch& s = *it.sw;
    const bool dim = row <= dim_rows;
    std::string from = current[s.from];
    if (!s.failure.empty()) {
      // The failure gets rows of its own, in the failing greenlet's lane, where it died: an
      // octagon for a one-line message, a box as tall as a longer one (a deadlock report).
      const std::string failed = prefix + "f_" + std::to_string(row - 1);
      std::string text = s.failure.size() > 1200 ? s.failure.substr(0, 1197) + "..." : s.failure;
      // Wrapped at spaces every 60 characters or so, so the box stays near its lane.
      for (std::size_t line = 0, i = 0; i < text.size(); ++i, ++line) {
        if (text[i] == '\n') line = 0;
        if (line >= 60 && text[i] == ' ') {
          text[i] = '\n';
          line = 0;
        }
      }
      const auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 2;
      const std::size_t rows = (lines + 2) / 3;  // about three lines of text per row
      out << "  " << failed << " [shape=" << (rows > 1 ? "box" : "octagon")
          << ", style=filled, fillcolor=\"#fce8e6\", color=\"#c5221f\", fontcolor=\"#a50e0e\","
          << " penwidth=2, fixedsize=false, label=" << quote("FAILED\n" + text) << ", pos=\""
          << column[s.from] << ","
          << -static_cast<long long>(row) * row_height -
                 static_cast<long long>(rows - 1) * row_height / 2
          << "!\"];\n";
      out << "  " << from << " -> " << failed << " [color=\"#c5221f\", penwidth=2];\n";
      from = failed;
      row += rows;
    }
    out << "  " << node << " [label=" << quote(name_of(s.to) + "\n" + format_time(s.time_ns))
        << (dim         ? ", fillcolor=\"#f8f9fa\", color=\"#bdc1c6\", fontcolor=\"#80868b\""
            : s.to == 0 ? ", fillcolor=\"#f1f3f4\", color=\"#80868b\""
                        : "")
        << ", pos=" << pos(column[s.to], static_cast<long long>(row)) << "];\n";
    std::string label = s.reason;
    if (!s.object.empty()) label += "\n" + s.object;
    if (s.holder != 0) label += "\nheld by #" + std::to_string(s.holder) + " " + name_of(s.holder);
    if (!s.choice.empty()) label = "* " + s.choice + "\n" + label;
    if (!s.fault.empty()) label = s.fault + "\n" + label;
    const bool marked =
        !s.choice.empty() || !s.failure.empty() || !s.fault.empty() || s.reason == "kill";
    const char* color = dim ? "#bdc1c6" : edge_color(s);
    out << "  " << from << " -> " << node << " [label=" << quote(label) << ", color=\"" << color
        << "\", fontcolor=\"" << color << "\"" << (marked && !dim ? ", penwidth=2" : "") << "];\n";
    current[s.to] = node;
  }
  // Each lane as a faint line from its header to its last box, drawn under everything.
  for (std::uint64_t id : used) {
    if (current[id] == prefix + "lane_" + std::to_string(id)) continue;
    out << "  " << prefix << "lane_" << id << " -> " << current[id]
        << " [color=\"#dadce0\", style=dashed, arrowhead=none];\n";
  }
}

std::string graph_header(const std::string& title) {
  return "digraph flow {\n"
         "  graph [splines=line, outputorder=edgesfirst, fontname=\"Helvetica\", fontsize=12,"
         " labelloc=t, label=" +
         quote(title) +
         "];\n"
         "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#e8f0fe\", color=\"#4a6fa5\","
         " fontname=\"Helvetica\", fontsize=10, width=1.1, height=0.42, fixedsize=true];\n"
         "  edge [fontname=\"Helvetica\", fontsize=9, arrowsize=0.7];\n";
}

std::string default_title(const Trace& t, const std::vector<Switch>& all) {
  std::string title = (t.test.empty() ? std::string("tendril flow") : t.test) + " (" +
                      (t.hub.empty() ? std::string("hub") : t.hub) + ")";
  // The first failure, so the picture says what went wrong before one reads it.
  for (const Switch& sw : all) {
    if (!sw.failure.empty()) {
      // Its first line only: the whole message is in the failing lane.
      std::string first = sw.failure.substr(0, sw.failure.find('\n'));
      if (first.size() > 160) first = first.substr(0, 157) + "...";
      title += "\nfailed: #" + std::to_string(sw.from) + " " + Names(t)(sw.from) + ": " + first;
      break;
    }
  }
  return title;
}

}  // namespace

std::string flow_dot(const Trace& t, const FlowOptions& options) {
  const std::vector<Switch> all = switches_of(t);
  std::vector<Switch> window;
  for (const Switch& s : all) {
    if (options.from_seq && s.seq < *options.from_seq) continue;
    if (options.to_seq && s.seq > *options.to_seq) continue;
    if (options.from_time_ns && s.time_ns < *options.from_time_ns) continue;
    if (options.to_time_ns && s.time_ns > *options.to_time_ns) continue;
    window.push_back(s);
  }
  std::vector<Item> items = collapse(window, options.collapse_repeats);
  std::size_t shown = 0, total_switches = 0;
  for (const Item& it : items) total_switches += it.sw != nullptr ? 1 : 0;
  if (total_switches > options.max_switches) {
    std::vector<Item> cut;
    std::uint64_t last_seq = 0;
    for (Item& it : items) {
      if (it.sw != nullptr) {
        if (shown == options.max_switches) break;
        ++shown;
        last_seq = it.sw->seq;
      }
      cut.push_back(std::move(it));
    }
    cut.push_back({nullptr, "cut: showing " + std::to_string(shown) + " of " +
                                std::to_string(total_switches) + " switches (up to seq " +
                                std::to_string(last_seq) + "); " +
                                "draw the rest with --from/--to or FlowOptions' window"});
    items = std::move(cut);
  }
  // Positions are computed here, not by a layout engine: lane i is column i, switch k is row k,
  // so drawing is linear in the number of switches (Graphviz's dot layout is far from linear on
  // graphs like this). Render with the "nop" layout (neato -n): every node is pinned.
  std::ostringstream out;
  out << graph_header(options.title.empty() ? default_title(t, all) : options.title);
  draw_panel(out, t, items, used_lanes(t, items), 0, "");
  out << "}\n";
  return out.str();
}

std::string diff_dot(const Trace& passing, const Trace& failing, const DiffOptions& options) {
  const trace::Parting parting = trace::part_ways(passing, failing);
  const std::vector<Switch> a = switches_of(passing), b = switches_of(failing);
  const std::size_t from = parting.common > options.context ? parting.common - options.context : 0;
  auto window = [&](const std::vector<Switch>& all) {
    std::vector<Switch> out;
    for (std::size_t i = from; i < all.size() && i < parting.common + options.after; ++i) {
      out.push_back(all[i]);
    }
    return out;
  };
  const std::vector<Switch> wa = window(a), wb = window(b);
  const std::vector<Item> ia = collapse(wa, false), ib = collapse(wb, false);
  const std::vector<std::uint64_t> la = used_lanes(passing, ia), lb = used_lanes(failing, ib);
  const std::size_t dim = parting.common - from;  // the shared rows before the parting
  std::string title = options.title;
  if (title.empty()) {
    title = (failing.test.empty() ? std::string("tendril") : failing.test) +
            ": a passing run (left) and a failing run (right)";
    if (const std::string f = default_title(failing, b);
        f.find("\nfailed: ") != std::string::npos) {
      title += f.substr(f.find("\nfailed: "));
    }
    title += parting.identical ? "\nthe two runs make the same switches"
                               : "\nthey agree for " + std::to_string(parting.common) +
                                     " switches (grey), then part ways";
  }
  std::ostringstream out;
  out << graph_header(title);
  const int right = static_cast<int>(la.size()) * lane_width + lane_width / 2;
  out << "  a_title [shape=plaintext, style=\"\", fontsize=13, fontcolor=\"#188038\","
      << " fixedsize=false, label=\"passing\", pos=" << pos(0, -1) << "];\n";
  out << "  b_title [shape=plaintext, style=\"\", fontsize=13, fontcolor=\"#c5221f\","
      << " fixedsize=false, label=\"failing\", pos=" << pos(right, -1) << "];\n";
  draw_panel(out, passing, ia, la, 0, "a_", dim);
  draw_panel(out, failing, ib, lb, right, "b_", dim);
  if (!parting.identical) {
    // A red rule across both panels where they part ways (between the last shared row and the
    // first different one).
    const int width = right + static_cast<int>(lb.size()) * lane_width;
    const long long y = -static_cast<long long>(dim) * row_height - row_height / 2;
    out << "  part_l [shape=point, width=0.01, style=invis, pos=\"" << -lane_width / 2 << "," << y
        << "!\"];\n"
        << "  part_r [shape=plaintext, style=\"\", fixedsize=false, fontcolor=\"#c5221f\","
        << " label=\"they part ways here\", pos=\"" << width << "," << y << "!\"];\n"
        << "  part_l -> part_r [color=\"#c5221f\", style=dashed, arrowhead=none, penwidth=1.5];\n";
  }
  out << "}\n";
  return out.str();
}

void write_perfetto(const Trace& t, std::ostream& out) {
  const Names name_of(t);
  const std::vector<Switch> all = switches_of(t);
  const bool virtual_time = t.hub == "SimHub";
  auto ts_of = [&](std::size_t k) -> double {
    return virtual_time ? static_cast<double>(k) : static_cast<double>(all[k].time_ns) / 1e3;
  };
  auto json_string = [](const std::string& text) {
    const std::string s = utf8(text);
    std::string o = "\"";
    for (const char c : s) {
      if (c == '"' || c == '\\') {
        o += '\\';
        o += c;
      } else if (c == '\n') {
        o += "\\n";
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        o += buf;
      } else {
        o += c;
      }
    }
    return o + "\"";
  };
  auto num = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    return std::string(buf);
  };
  out << "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"hub\":" << json_string(t.hub)
      << ",\"test\":" << json_string(t.test) << ",\"ts\":"
      << json_string(virtual_time ? "switch count (virtual time in args)" : "hub time") << "},"
      << "\"traceEvents\":[\n";
  bool first = true;
  auto emit = [&](const std::string& line) {
    out << (first ? "" : ",\n") << line;
    first = false;
  };
  std::vector<std::uint64_t> tids = {0};
  std::set<std::uint64_t> have = {0};
  for (const auto& e : t.events) {
    if (e.kind == EventKind::spawn && have.insert(e.greenlet).second) tids.push_back(e.greenlet);
  }
  for (const Switch& s : all) {
    for (std::uint64_t id : {s.from, s.to}) {
      if (have.insert(id).second) tids.push_back(id);
    }
  }
  for (std::size_t i = 0; i < tids.size(); ++i) {
    const std::uint64_t id = tids[i];
    const std::string name = id == 0 ? "hub" : "#" + std::to_string(id) + " " + name_of(id);
    emit("{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":" + std::to_string(id) +
         ",\"args\":{\"name\":" + json_string(name) + "}}");
    emit("{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":1,\"tid\":" + std::to_string(id) +
         ",\"args\":{\"sort_index\":" + std::to_string(i) + "}}");
  }
  emit("{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":1,\"args\":{\"name\":" +
       json_string("tendril " + t.hub + (t.test.empty() ? "" : ": " + t.test)) + "}}");
  // Running stretches: a lane runs from the switch into it to the next switch out of it. The
  // hub runs from the start until its first switch out.
  std::map<std::uint64_t, std::size_t> running_since;  // lane -> index of the switch into it
  std::map<std::uint64_t, std::int64_t> since_ns;
  for (std::size_t k = 0; k < all.size(); ++k) {
    const Switch& s = all[k];
    auto it = running_since.find(s.from);
    const double start = it != running_since.end() ? ts_of(it->second) : 0.0;
    const std::int64_t start_ns = it != running_since.end() ? since_ns[s.from] : 0;
    const double end = ts_of(k);
    const std::string name = name_of(s.from);
    emit("{\"ph\":\"X\",\"name\":" + json_string(name) +
         ",\"cat\":\"run\",\"pid\":1,\"tid\":" + std::to_string(s.from) + ",\"ts\":" + num(start) +
         ",\"dur\":" + num(std::max(end - start, 0.001)) + ",\"args\":{\"from_ns\":" +
         std::to_string(start_ns) + ",\"to_ns\":" + std::to_string(s.time_ns) +
         ",\"left_by\":" + json_string(s.reason) + "}}");
    running_since.erase(s.from);
    running_since[s.to] = k;
    since_ns[s.to] = s.time_ns;
    const std::string label = s.reason + (s.object.empty() ? "" : " " + s.object);
    emit("{\"ph\":\"s\",\"id\":" + std::to_string(k + 1) + ",\"name\":" + json_string(label) +
         ",\"cat\":\"switch\",\"pid\":1,\"tid\":" + std::to_string(s.from) +
         ",\"ts\":" + num(std::max(end - 0.001, start)) + "}");
    emit("{\"ph\":\"f\",\"bp\":\"e\",\"id\":" + std::to_string(k + 1) + ",\"name\":" +
         json_string(label) + ",\"cat\":\"switch\",\"pid\":1,\"tid\":" + std::to_string(s.to) +
         ",\"ts\":" + num(end) + "}");
  }
  // Whatever still runs at the end gets a short closing slice.
  for (const auto& [lane, k] : running_since) {
    emit("{\"ph\":\"X\",\"name\":" + json_string(name_of(lane)) +
         ",\"cat\":\"run\",\"pid\":1,\"tid\":" + std::to_string(lane) + ",\"ts\":" + num(ts_of(k)) +
         ",\"dur\":1.000,\"args\":{\"from_ns\":" + std::to_string(since_ns[lane]) + "}}");
  }
  out << "\n]}\n";
}

void save_perfetto(const Trace& t, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw VizError("tendril-viz: cannot write " + path);
  write_perfetto(t, out);
  out.flush();
  if (!out) throw VizError("tendril-viz: writing " + path + " failed");
}

}  // namespace tendril::viz
