// SPDX-License-Identifier: Apache-2.0
// schedule.cpp: the schedule file format (trace/FORMAT.md): writing, and reading with
// validation that names the line and field of every problem.
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "file_check.hpp"
#include "tendril/trace.hpp"

namespace tendril {
namespace {

constexpr std::uint64_t fnv_basis = schedule_hash_basis;
constexpr const char* magic = "tendril-schedule";

std::string hex(std::uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

// fold_line() folds one record line (and its newline) into the file hash: FNV-1a, 64 bits.
std::uint64_t fold_line(std::uint64_t h, const std::string& line) {
  for (unsigned char c : line) h = (h ^ c) * 0x100000001b3ULL;
  return (h ^ static_cast<unsigned char>('\n')) * 0x100000001b3ULL;
}

// is_record() says whether a line is covered by the file hash: every line but blank lines,
// comments and the 'end' line itself.
bool is_record(const std::string& line) {
  return !line.empty() && line[0] != '#' && line.rfind("end ", 0) != 0 && line != "end";
}

std::string seconds(std::int64_t ns) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%" PRId64 ".%09" PRId64 "s", ns / 1000000000, ns % 1000000000);
  return buf;
}

// Names must stay on one line: escape backslash, newline and carriage return. The reader skips
// the whitespace between a key and its value, so a value's own leading whitespace is escaped too
// ("\ "; unescape() turns any "\c" into c, so older readers keep the space as well).
std::string escape(const std::string& s) {
  std::string out;
  if (!s.empty() && (s[0] == ' ' || s[0] == '\t' || s[0] == '\v' || s[0] == '\f')) out += '\\';
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  return out;
}

std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char c = s[++i];
      out += c == 'n' ? '\n' : c == 'r' ? '\r' : c;
    } else {
      out += s[i];
    }
  }
  return out;
}

class Parser {
 public:
  Parser(const std::string& text, const std::string& source) : in_(text), source_(source) {}

  Schedule parse() {
    Schedule s;
    std::string line;
    if (!next(line)) fail("the file is empty; expected the first line '" + first_line() + "'");
    const int version = check_magic(line);
    std::uint64_t file_hash = fold_line(fnv_basis, line);
    bool have_test = false, have_policy = false, have_seed = false, have_count = false;
    std::uint64_t count = 0;
    bool ended = false;
    while (next(line)) {
      if (line.empty() || line[0] == '#') continue;
      if (ended) fail("content after the 'end' line");
      if (is_record(line)) file_hash = fold_line(file_hash, line);
      std::istringstream fields(line);
      std::string key;
      fields >> key;
      if (key == "test") {
        s.test = rest(fields);
        if (s.test.empty()) fail("field 'test' is empty");
        have_test = true;
      } else if (key == "policy") {
        s.policy = rest(fields);
        if (s.policy.empty()) fail("field 'policy' is empty");
        have_policy = true;
      } else if (key == "seed") {
        s.seed = number(fields, "seed");
        have_seed = true;
      } else if (key == "choices") {
        count = number(fields, "choices");
        have_count = true;
      } else if (key == "c") {
        for (auto [have, field] : {std::pair{have_test, "test"},
                                   {have_policy, "policy"},
                                   {have_seed, "seed"},
                                   {have_count, "choices"}}) {
          if (!have) fail(std::string("missing field '") + field + "' before the first choice");
        }
        const std::uint64_t prev_hash = s.final_hash();
        const std::uint64_t prev_step = s.choices.empty() ? 0 : s.choices.back().step;
        s.choices.push_back(choice(fields, s.choices.size(), version));
        const ChoiceRecord& r = s.choices.back();
        if (r.step < prev_step) fail("field 'step' goes backwards");
        // The hash chains every field, so any edited or corrupted field is caught here.
        if (next_schedule_hash(prev_hash, r, prev_step) != r.hash) {
          fail(
              "field 'hash' does not match the choice's fields (the file was edited or corrupted)");
        }
      } else if (key == "end") {
        const std::uint64_t n = number(fields, "end count");
        const std::uint64_t h = hex_number(fields, "end hash");
        if (n != s.choices.size()) {
          fail("the 'end' line counts " + std::to_string(n) + " choices but the file holds " +
               std::to_string(s.choices.size()));
        }
        if (h != s.final_hash()) fail("the 'end' hash does not match the last choice's hash");
        // Version 2 covers the whole file: the header lines and the names too.
        if (version >= 2 && hex_number(fields, "end file hash") != file_hash) {
          fail(
              "the 'end' line's file hash does not match the file's lines (a header line or a "
              "name was edited, or the file is corrupted)");
        }
        std::string extra;
        if (fields >> extra) fail("unexpected field '" + extra + "' after the 'end' hash");
        ended = true;
      } else {
        fail("unknown field '" + key + "'");
      }
    }
    if (!have_test) fail_at(0, "missing field 'test'");
    if (!have_policy) fail_at(0, "missing field 'policy'");
    if (!have_seed) fail_at(0, "missing field 'seed'");
    if (!have_count) fail_at(0, "missing field 'choices'");
    if (!ended) {
      fail_at(0, "truncated: no 'end' line after " + std::to_string(s.choices.size()) +
                     " choices (the header announces " + std::to_string(count) + ")");
    }
    if (count != s.choices.size()) {
      fail_at(0, "the header announces " + std::to_string(count) + " choices but the file holds " +
                     std::to_string(s.choices.size()));
    }
    return s;
  }

 private:
  bool next(std::string& line) {
    if (!std::getline(in_, line)) return false;
    ++line_no_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
  }
  [[noreturn]] void fail(const std::string& what) { fail_at(line_no_, what); }
  [[noreturn]] void fail_at(std::size_t line, const std::string& what) {
    throw ScheduleError("tendril: " + source_ + (line ? ":" + std::to_string(line) : "") + ": " +
                        what);
  }
  static std::string first_line() {
    return std::string(magic) + " " + std::to_string(Schedule::format_version);
  }
  // check_magic() checks the first line and returns the file's format version.
  int check_magic(const std::string& line) {
    std::istringstream f(line);
    std::string word, version, extra;
    f >> word >> version;
    if (word != magic) {
      fail("not a tendril schedule file: the first line is '" + line.substr(0, 60) +
           "', expected '" + first_line() + "'");
    }
    // Version 1 (whose hash did not cover the header lines) is still read.
    if ((version != "1" && version != "2" && version != "3") || (f >> extra)) {
      const std::size_t at = line.find_first_not_of(" \t", word.size());
      fail("unsupported schedule format version '" +
           (at == std::string::npos ? std::string() : line.substr(at, 40)) +
           "' (this build reads versions 1, 2 and 3)");
    }
    return version[0] - '0';
  }
  static std::string rest(std::istringstream& f) {
    std::string r;
    std::getline(f >> std::ws, r);
    return unescape(r);
  }
  // token() reads the next whitespace-separated field, or fails naming it.
  std::string token(std::istringstream& f, const char* field) {
    std::string tok;
    if (!(f >> tok)) fail(std::string("field '") + field + "' is missing");
    return tok;
  }
  // parsed() checks a strto* parse of tok consumed all of it without overflow.
  template <class T>
  T parsed(const std::string& tok, T value, const char* end, bool ok, const char* field,
           const char* expected) {
    if (!ok || errno != 0 || end == tok.c_str() || *end != '\0') {
      fail(std::string("field '") + field + "' must be " + expected + ", got '" + tok + "'");
    }
    return value;
  }
  std::uint64_t number(std::istringstream& f, const char* field) {
    const std::string tok = token(f, field);
    errno = 0;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(tok.c_str(), &end, 10);
    return parsed<std::uint64_t>(tok, v, end, tok[0] != '-', field, "a non-negative integer");
  }
  std::int64_t signed_number(std::istringstream& f, const char* field) {
    const std::string tok = token(f, field);
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(tok.c_str(), &end, 10);
    return parsed<std::int64_t>(tok, v, end, true, field, "an integer");
  }
  std::uint64_t hex_number(std::istringstream& f, const char* field) {
    const std::string tok = token(f, field);
    errno = 0;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(tok.c_str(), &end, 16);
    return parsed<std::uint64_t>(tok, v, end, tok.size() == 16, field, "16 hex digits");
  }
  ChoiceRecord choice(std::istringstream& f, std::size_t index, int version) {
    ChoiceRecord r;
    r.index = number(f, "index");
    if (r.index != index) {
      fail("choice index " + std::to_string(r.index) + " out of order (expected " +
           std::to_string(index) + ")");
    }
    r.step = number(f, "step");
    r.time_ns = signed_number(f, "time_ns");
    std::string kind;
    if (!(f >> kind)) fail("field 'kind' is missing");
    if (kind == "ready") {
      r.kind = ChoiceKind::ready;
    } else if (kind == "timer") {
      r.kind = ChoiceKind::timer;
    } else if (kind == "random") {
      r.kind = ChoiceKind::random;
    } else {
      fail("field 'kind' must be ready, timer or random, got '" + kind + "'");
    }
    const std::uint64_t n = number(f, "n");
    const std::uint64_t answer = number(f, "answer");
    if (n < 2 || n > UINT32_MAX) fail("field 'n' must be at least 2, got " + std::to_string(n));
    if (answer >= n) {
      fail("field 'answer' is " + std::to_string(answer) +
           " but must be below n = " + std::to_string(n));
    }
    r.n = static_cast<std::uint32_t>(n);
    r.answer = static_cast<std::uint32_t>(answer);
    r.chosen_key = number(f, "chosen");
    if (version >= 3) {  // what the answer did; versions 1 and 2 leave it unknown
      std::string action;
      if (!(f >> action)) fail("field 'action' is missing");
      if (!action_from(action, r.action)) {
        fail(
            "field 'action' must be start, yield, wake, timer, kill, timeout, links, notify, "
            "call, draw or ?, got '" +
            action + "'");
      }
      if ((r.kind == ChoiceKind::random) != (r.action == Action::draw)) {
        fail(r.kind == ChoiceKind::random
                 ? "field 'action' of a random choice must be draw, got '" + action + "'"
                 : "field 'action' is draw, but only a random choice draws");
      }
    }
    r.hash = hex_number(f, "hash");
    r.chosen_name = rest(f);
    return r;
  }

  std::istringstream in_;
  std::string source_;
  std::size_t line_no_ = 0;
};

}  // namespace

std::uint64_t Schedule::final_hash() const noexcept {
  return choices.empty() ? fnv_basis : choices.back().hash;
}

std::string describe_choice(const ChoiceRecord& r) {
  return "#" + std::to_string(r.index) + " step " + std::to_string(r.step) +
         " t=" + seconds(r.time_ns) + " " + to_string(r.kind) + " " + std::to_string(r.answer) +
         " of " + std::to_string(r.n) + (r.kind == ChoiceKind::random ? " drawn by " : " -> ") +
         (r.chosen_name.empty() ? "?" : r.chosen_name) +
         (r.kind == ChoiceKind::random || r.action == Action::unknown
              ? std::string()
              : std::string(" (") + to_string(r.action) + ")");
}

std::string format_schedule(const Schedule& s) {
  std::string out;
  std::uint64_t file_hash = fnv_basis;
  auto record = [&](const std::string& line) {
    file_hash = fold_line(file_hash, line);
    out += line;
    out += '\n';
  };
  record(std::string(magic) + " " + std::to_string(Schedule::format_version));
  out += "# A tendril schedule: every choice one simulated run made. Format: trace/FORMAT.md.\n";
  record("test " + escape(s.test));
  record("policy " + escape(s.policy));
  record("seed " + std::to_string(s.seed));
  record("choices " + std::to_string(s.choices.size()));
  out += "# c index step time_ns kind n answer chosen action hash chosen_name\n";
  for (const auto& r : s.choices) {
    // A record read from a version 1 or 2 file does not know its action: "?" is written then.
    const Action action = r.kind == ChoiceKind::random ? Action::draw : r.action;
    record("c " + std::to_string(r.index) + ' ' + std::to_string(r.step) + ' ' +
           std::to_string(r.time_ns) + ' ' + to_string(r.kind) + ' ' + std::to_string(r.n) + ' ' +
           std::to_string(r.answer) + ' ' + std::to_string(r.chosen_key) + ' ' + to_string(action) +
           ' ' + hex(r.hash) + ' ' + escape(r.chosen_name));
  }
  out += "end " + std::to_string(s.choices.size()) + ' ' + hex(s.final_hash()) + ' ' +
         hex(file_hash) + '\n';
  return out;
}

Schedule parse_schedule(const std::string& text, const std::string& source) {
  return Parser(text, source).parse();
}

void save_schedule(const Schedule& schedule, const std::string& path) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec)
    throw ScheduleError("tendril: cannot create folder " + parent.string() + ": " + ec.message());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    throw ScheduleError("tendril: cannot write schedule file " + path + ": " +
                        std::strerror(errno));
  out << format_schedule(schedule);
  out.close();
  if (!out) throw ScheduleError("tendril: writing schedule file " + path + " failed");
}

Schedule load_schedule(const std::string& path) {
  if (std::string problem = detail::file_problem(path, max_schedule_file_bytes, "schedule");
      !problem.empty()) {
    throw ScheduleError(problem);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ScheduleError("tendril: cannot read schedule file " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ScheduleError("tendril: reading schedule file " + path + " failed");
  return parse_schedule(text.str(), path);
}

}  // namespace tendril
