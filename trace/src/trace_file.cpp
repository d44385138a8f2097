// SPDX-License-Identifier: Apache-2.0
// trace_file.cpp: the trace data model's helpers and the JSON Lines trace file format.
#include "tendril/trace/trace_file.hpp"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <utility>

#include "file_check.hpp"

namespace tendril::trace {
namespace {

constexpr const char* kind_names[] = {"spawn", "switch", "block", "wake", "timer",
                                      "io",    "choice", "exit",  "kill", "fault"};

void write_string(std::ostream& out, std::string_view s) {
  out << '"';
  for (const char c : s) {
    switch (c) {
      case '"':
        out << "\\\"";
        break;
      case '\\':
        out << "\\\\";
        break;
      case '\n':
        out << "\\n";
        break;
      case '\r':
        out << "\\r";
        break;
      case '\t':
        out << "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char hex[] = "0123456789abcdef";
          out << "\\u00" << hex[(c >> 4) & 0xf] << hex[c & 0xf];
        } else {
          out << c;  // UTF-8 passes through
        }
    }
  }
  out << '"';
}

// Value is one field of a flat JSON object: a string or an integer.
struct Value {
  bool is_string = false;
  std::string text;
  std::int64_t number = 0;
};

// Line parses one flat JSON object ({"key": "string" | integer, ...}) and reports errors with
// the origin and line.
class Line {
 public:
  Line(std::string_view text, std::string_view origin, std::size_t line)
      : s_(text), origin_(origin), line_(line) {}

  [[noreturn]] void fail(std::string_view field, const std::string& what) const {
    std::string msg = "tendril: " + std::string(origin_) + ":" + std::to_string(line_) + ": ";
    if (!field.empty()) msg += std::string(field) + ": ";
    throw TraceError(msg + what);
  }

  std::map<std::string, Value> parse() {
    std::map<std::string, Value> fields;
    skip_space();
    expect('{');
    skip_space();
    if (peek() == '}') {
      ++i_;
    } else {
      for (;;) {
        skip_space();
        std::string key = parse_string("a field name");
        skip_space();
        expect(':');
        skip_space();
        Value v;
        if (peek() == '"') {
          v.is_string = true;
          v.text = parse_string(key);
        } else {
          v.number = parse_integer(key);
        }
        if (!fields.emplace(key, std::move(v)).second) fail(key, "appears twice");
        skip_space();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect('}');
        break;
      }
    }
    skip_space();
    if (i_ != s_.size()) fail("", "unexpected text after the JSON object");
    return fields;
  }

 private:
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    if (peek() != c) {
      fail("", std::string("malformed JSON: expected '") + c + "' at column " +
                   std::to_string(i_ + 1) + (i_ < s_.size() ? "" : " (line ends early)"));
    }
    ++i_;
  }
  std::string parse_string(std::string_view field) {
    if (peek() != '"') fail(field, "expected a string at column " + std::to_string(i_ + 1));
    ++i_;
    std::string out;
    std::size_t bytes = 0;  // the string's whole length; out keeps at most max_trace_text_bytes
    for (;;) {
      if (out.size() > max_trace_text_bytes) {
        bytes += out.size() - max_trace_text_bytes;
        out.resize(max_trace_text_bytes);
      }
      if (i_ >= s_.size()) fail(field, "unterminated string");
      const char c = s_[i_++];
      if (c == '"') return bytes == 0 ? out : shortened(std::move(out), bytes);
      if (static_cast<unsigned char>(c) < 0x20) fail(field, "control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail(field, "unterminated escape");
      const char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          if (i_ + 4 > s_.size()) fail(field, "short \\u escape");
          unsigned code = 0;
          for (int k = 0; k < 4; ++k) {
            const char h = s_[i_++];
            code <<= 4;
            if (h >= '0' && h <= '9') {
              code |= static_cast<unsigned>(h - '0');
            } else if (h >= 'a' && h <= 'f') {
              code |= static_cast<unsigned>(h - 'a' + 10);
            } else if (h >= 'A' && h <= 'F') {
              code |= static_cast<unsigned>(h - 'A' + 10);
            } else {
              fail(field, "bad hex digit in \\u escape");
            }
          }
          // UTF-8 encode (surrogate pairs are kept as two code units' encodings).
          if (code < 0x80) {
            out += static_cast<char>(code);
          } else if (code < 0x800) {
            out += static_cast<char>(0xc0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3f));
          } else {
            out += static_cast<char>(0xe0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (code & 0x3f));
          }
          break;
        }
        default:
          fail(field, std::string("unknown escape \\") + e);
      }
    }
  }
  // shortened() cuts a string whose whole length was out.size() + dropped bytes to at most
  // max_trace_text_bytes, at a UTF-8 character boundary, ending in " ... (N bytes)".
  static std::string shortened(std::string out, std::size_t dropped) {
    const std::string tail = " ... (" + std::to_string(out.size() + dropped) + " bytes)";
    std::size_t keep = max_trace_text_bytes - tail.size();
    while (keep > 0 && (static_cast<unsigned char>(out[keep]) & 0xc0) == 0x80) --keep;
    out.resize(keep);
    return out + tail;
  }
  std::int64_t parse_integer(std::string_view field) {
    const std::size_t start = i_;
    if (peek() == '-') ++i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(s_.data() + start, s_.data() + i_, v);
    if (i_ == start || ec != std::errc() || end != s_.data() + i_) {
      fail(field, "expected an integer or a string at column " + std::to_string(start + 1));
    }
    if (peek() == '.' || peek() == 'e' || peek() == 'E') fail(field, "must be an integer");
    return v;
  }

  std::string_view s_;
  std::string_view origin_;
  std::size_t line_;
  std::size_t i_ = 0;
};

std::int64_t number(const Line& line, const std::map<std::string, Value>& f, const char* key,
                    bool required, std::int64_t min = 0) {
  auto it = f.find(key);
  if (it == f.end()) {
    if (required) line.fail(key, "missing");
    return 0;
  }
  if (it->second.is_string) line.fail(key, "must be an integer, not a string");
  if (it->second.number < min) {
    line.fail(key, "must be at least " + std::to_string(min) + ", got " +
                       std::to_string(it->second.number));
  }
  return it->second.number;
}

std::string text(const Line& line, const std::map<std::string, Value>& f, const char* key,
                 bool required) {
  auto it = f.find(key);
  if (it == f.end()) {
    if (required) line.fail(key, "missing");
    return {};
  }
  if (!it->second.is_string) line.fail(key, "must be a string");
  return it->second.text;
}

}  // namespace

std::string_view to_string(EventKind kind) noexcept {
  const auto i = static_cast<std::size_t>(kind);
  return i < std::size(kind_names) ? kind_names[i] : "?";
}

bool parse_event_kind(std::string_view text, EventKind& out) noexcept {
  for (std::size_t i = 0; i < std::size(kind_names); ++i) {
    if (text == kind_names[i]) {
      out = static_cast<EventKind>(i);
      return true;
    }
  }
  return false;
}

std::string Trace::greenlet_name(std::uint64_t id) const {
  if (id == 0) return "hub";
  for (const TraceEvent& e : events) {
    if (e.kind == EventKind::spawn && e.greenlet == id && !e.name.empty()) return e.name;
  }
  return id == 1 ? "main" : "greenlet-" + std::to_string(id);
}

void write_trace_header(std::ostream& out, std::string_view hub, std::string_view test) {
  out << "{\"format\":\"tendril-trace\",\"version\":" << trace_format_version << ",\"hub\":";
  write_string(out, hub);
  out << ",\"test\":";
  write_string(out, test);
  out << "}\n";
}

void write_trace_event(std::ostream& out, const TraceEvent& e) {
  out << "{\"seq\":" << e.seq << ",\"t\":" << e.time_ns << ",\"ev\":\"" << to_string(e.kind)
      << "\",\"g\":" << e.greenlet;
  if (e.other != 0) out << ",\"other\":" << e.other;
  if (e.object != 0) out << ",\"obj\":" << e.object;
  if (!e.reason.empty()) {
    out << ",\"reason\":";
    write_string(out, e.reason);
  }
  if (!e.name.empty()) {
    out << ",\"name\":";
    write_string(out, e.name);
  }
  if (e.kind == EventKind::choice) out << ",\"n\":" << e.n << ",\"answer\":" << e.answer;
  out << "}\n";
}

void write_trace_end(std::ostream& out, std::uint64_t count) {
  out << "{\"end\":" << count << "}\n";
}

std::string format_trace(const Trace& trace) {
  std::ostringstream out;
  write_trace_header(out, trace.hub, trace.test);
  for (const TraceEvent& e : trace.events) write_trace_event(out, e);
  write_trace_end(out, trace.events.size());
  return out.str();
}

Trace parse_trace(std::string_view text_in, std::string_view origin) {
  Trace trace;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  bool header = false;
  bool ended = false;
  std::int64_t last_time = std::numeric_limits<std::int64_t>::min();
  while (pos < text_in.size()) {
    std::size_t eol = text_in.find('\n', pos);
    if (eol == std::string_view::npos) eol = text_in.size();
    const std::string_view raw = text_in.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    Line line(raw, origin, line_no);
    if (raw.find_first_not_of(" \t\r") == std::string_view::npos) {
      line.fail("", "empty line (each line holds one JSON object)");
    }
    if (ended) line.fail("", "text after the end line");
    const auto f = line.parse();
    if (!header) {
      const auto format = f.find("format");
      if (format == f.end() || !format->second.is_string ||
          format->second.text != "tendril-trace") {
        line.fail("format",
                  "not a tendril trace file (the first line must be "
                  "{\"format\":\"tendril-trace\",\"version\":1,...})");
      }
      const std::int64_t version = number(line, f, "version", true);
      if (version != trace_format_version) {
        line.fail("version", "unsupported trace format version " + std::to_string(version) +
                                 " (this tendril reads version " +
                                 std::to_string(trace_format_version) + ")");
      }
      trace.hub = text(line, f, "hub", true);
      trace.test = text(line, f, "test", false);
      header = true;
      continue;
    }
    if (f.count("end") != 0) {
      const std::int64_t count = number(line, f, "end", true);
      if (static_cast<std::uint64_t>(count) != trace.events.size()) {
        line.fail("end", "the end line counts " + std::to_string(count) + " events but " +
                             std::to_string(trace.events.size()) + " precede it");
      }
      ended = true;
      continue;
    }
    TraceEvent e;
    e.seq = static_cast<std::uint64_t>(number(line, f, "seq", true));
    if (e.seq != trace.events.size()) {
      line.fail("seq", "expected " + std::to_string(trace.events.size()) + ", got " +
                           std::to_string(e.seq) + " (events must be numbered 0, 1, 2, ...)");
    }
    e.time_ns = number(line, f, "t", true, std::numeric_limits<std::int64_t>::min());
    if (e.time_ns < last_time) {
      line.fail("t", "time goes backwards (" + std::to_string(e.time_ns) + " after " +
                         std::to_string(last_time) + ")");
    }
    last_time = e.time_ns;
    const std::string kind = text(line, f, "ev", true);
    if (!parse_event_kind(kind, e.kind)) {
      line.fail("ev", "unknown event kind '" + kind +
                          "' (known: spawn switch block wake timer io choice exit kill fault)");
    }
    e.greenlet = static_cast<std::uint64_t>(number(line, f, "g", true));
    e.other = static_cast<std::uint64_t>(number(line, f, "other", false));
    e.object = static_cast<std::uint64_t>(number(line, f, "obj", false));
    e.reason = text(line, f, "reason", false);
    e.name = text(line, f, "name", false);
    if (e.kind == EventKind::choice) {
      const std::int64_t n = number(line, f, "n", true, 2);
      const std::int64_t answer = number(line, f, "answer", true);
      if (n > std::numeric_limits<std::uint32_t>::max()) line.fail("n", "too large");
      if (answer >= n) {
        line.fail("answer", std::to_string(answer) + " is not below n = " + std::to_string(n));
      }
      e.n = static_cast<std::uint32_t>(n);
      e.answer = static_cast<std::uint32_t>(answer);
    }
    if ((e.kind == EventKind::switch_ || e.kind == EventKind::block) && e.reason.empty()) {
      line.fail("reason", "missing (a " + kind + " event says why)");
    }
    if (e.kind == EventKind::switch_ && (e.greenlet == 0) == (e.other == 0)) {
      line.fail("other", "a switch goes between the hub (0) and a greenlet");
    }
    for (const auto& [key, value] : f) {
      static constexpr const char* known[] = {"seq", "t",      "ev",   "g", "other",
                                              "obj", "reason", "name", "n", "answer"};
      bool ok = false;
      for (const char* k : known) ok = ok || key == k;
      if (!ok) line.fail(key, "unknown field");
    }
    trace.events.push_back(std::move(e));
  }
  if (!header) {
    throw TraceError("tendril: " + std::string(origin) +
                     ": empty trace file (expected a tendril-trace header line)");
  }
  if (!ended) {
    throw TraceError("tendril: " + std::string(origin) + ":" + std::to_string(line_no + 1) +
                     ": truncated: no end line after " + std::to_string(trace.events.size()) +
                     " events (was the run or the copy cut short?)");
  }
  return trace;
}

void save_trace(const Trace& trace, const std::string& path) {
  const std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) {
    throw TraceError("tendril: cannot create folder " + p.parent_path().string() + ": " +
                     ec.message());
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    throw TraceError("tendril: cannot write trace file " + path + ": " + std::strerror(errno));
  out << format_trace(trace);
  out.flush();
  if (!out) throw TraceError("tendril: writing trace file " + path + " failed");
}

Trace load_trace(const std::string& path) {
  if (std::string problem = detail::file_problem(path, max_trace_file_bytes, "trace");
      !problem.empty()) {
    throw TraceError(problem);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw TraceError("tendril: cannot read trace file " + path + ": " + std::strerror(errno));
  // Read into a string of the file's size: one copy of the file in memory, not three (a
  // stringstream doubles as it grows, and str() copies it).
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  std::string text(ec ? 0 : static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) throw TraceError("tendril: reading trace file " + path + " failed");
  return parse_trace(text, path);
}

namespace {
std::atomic<FlowRenderer> installed_renderer{nullptr};
}  // namespace

void set_flow_renderer(FlowRenderer renderer) noexcept { installed_renderer.store(renderer); }
FlowRenderer flow_renderer() noexcept { return installed_renderer.load(); }

}  // namespace tendril::trace
