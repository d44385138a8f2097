// SPDX-License-Identifier: Apache-2.0
// trace_file_test.cpp: the trace file format: round trips, streaming, and every load error with
// its line and field.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>

#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

using namespace std::chrono_literals;
namespace tr = tendril::trace;

namespace {

tr::Trace recorded() {
  tendril::SimHub hub(std::make_unique<tendril::Random>(9));
  hub.set_error_handler([](tendril::Greenlet&, std::exception_ptr) {});  // failer is expected
  tr::Tracer tracer(hub, "Trace.\"quoted\"\tname");
  tendril::run(hub, [] {
    tendril::Queue<int> q;
    auto consumer = tendril::spawn("consumer \xc3\xa9", [&] { (void)q.get(); });
    auto failer = tendril::spawn("failer", [] { throw std::runtime_error("line1\nline2 \"q\""); });
    tendril::sleep(1ms);
    q.put(static_cast<int>(tendril::random_below(3)));
    tendril::joinall({consumer, failer});
  });
  return tracer.trace();
}

std::string error_of(const std::string& text) {
  try {
    (void)tr::parse_trace(text, "t.trace");
  } catch (const tr::TraceError& e) {
    return e.what();
  }
  return "(no error)";
}

const std::string header = "{\"format\":\"tendril-trace\",\"version\":1,\"hub\":\"SimHub\"}\n";

TEST(TraceFile, RoundTripsARecordedTraceExactly) {
  const tr::Trace t = recorded();
  ASSERT_GT(t.events.size(), 20u);
  const std::string text = tr::format_trace(t);
  EXPECT_EQ(tr::parse_trace(text, "mem"), t);
  EXPECT_EQ(tr::format_trace(tr::parse_trace(text, "mem")), text);
  // One header, one line per event, one end line.
  EXPECT_EQ(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')),
            t.events.size() + 2);
  EXPECT_NE(text.find("\"test\":\"Trace.\\\"quoted\\\"\\tname\""), std::string::npos) << text;
  EXPECT_NE(text.find("line1\\nline2 \\\"q\\\""), std::string::npos);
}

TEST(TraceFile, StreamingWritesTheSameBytesAsFormat) {
  const tr::Trace t = recorded();
  std::ostringstream out;
  tr::write_trace_header(out, t.hub, t.test);
  for (const auto& e : t.events) tr::write_trace_event(out, e);
  tr::write_trace_end(out, t.events.size());
  EXPECT_EQ(out.str(), tr::format_trace(t));
}

TEST(TraceFile, SavesAndLoadsFilesAndNamesAMissingOne) {
  const auto dir = std::filesystem::temp_directory_path() / "tendril-trace-file-test";
  std::filesystem::remove_all(dir);
  const std::string path = (dir / "sub" / "run.trace").string();
  const tr::Trace t = recorded();
  tr::save_trace(t, path);
  EXPECT_EQ(tr::load_trace(path), t);
  try {
    (void)tr::load_trace((dir / "missing.trace").string());
    FAIL() << "no error";
  } catch (const tr::TraceError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read trace file"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("missing.trace: No such file or directory"),
              std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(TraceFile, GreenletNamesComeFromSpawnEvents) {
  const tr::Trace t = recorded();
  EXPECT_EQ(t.greenlet_name(0), "hub");
  EXPECT_EQ(t.greenlet_name(1), "main");
  EXPECT_EQ(t.greenlet_name(2), "consumer \xc3\xa9");
  EXPECT_EQ(t.greenlet_name(99), "greenlet-99");
}

TEST(TraceFile, EveryBadInputSaysWhatAndWhere) {
  const std::string ok_event = "{\"seq\":0,\"t\":5,\"ev\":\"spawn\",\"g\":1}\n";
  EXPECT_EQ(error_of(""),
            "tendril: t.trace: empty trace file (expected a tendril-trace header line)");
  EXPECT_EQ(error_of("{\"format\":\"other\"}\n"),
            "tendril: t.trace:1: format: not a tendril trace file (the first line must be "
            "{\"format\":\"tendril-trace\",\"version\":1,...})");
  EXPECT_EQ(error_of("{\"format\":\"tendril-trace\",\"version\":2,\"hub\":\"x\"}\n"),
            "tendril: t.trace:1: version: unsupported trace format version 2 (this tendril "
            "reads version 1)");
  EXPECT_EQ(error_of(header + ok_event),
            "tendril: t.trace:3: truncated: no end line after 1 events (was the run or the copy "
            "cut short?)");
  EXPECT_EQ(error_of(header + ok_event + "{\"end\":2}\n"),
            "tendril: t.trace:3: end: the end line counts 2 events but 1 precede it");
  EXPECT_EQ(error_of(header + ok_event + "{\"end\":1}\n{\"end\":1}\n"),
            "tendril: t.trace:4: text after the end line");
  EXPECT_EQ(error_of(header + "{\"seq\":1,\"t\":5,\"ev\":\"spawn\",\"g\":1}\n"),
            "tendril: t.trace:2: seq: expected 0, got 1 (events must be numbered 0, 1, 2, ...)");
  EXPECT_EQ(error_of(header + ok_event + "{\"seq\":1,\"t\":4,\"ev\":\"spawn\",\"g\":2}\n"),
            "tendril: t.trace:3: t: time goes backwards (4 after 5)");
  EXPECT_EQ(error_of(header + "{\"seq\":0,\"t\":5,\"ev\":\"jump\",\"g\":1}\n"),
            "tendril: t.trace:2: ev: unknown event kind 'jump' (known: spawn switch block wake "
            "timer io choice exit kill fault)");
  EXPECT_EQ(error_of(header + "{\"seq\":0,\"t\":5,\"ev\":\"spawn\"}\n"),
            "tendril: t.trace:2: g: missing");
  EXPECT_EQ(error_of(header + "{\"seq\":0,\"t\":5,\"ev\":\"switch\",\"g\":1}\n"),
            "tendril: t.trace:2: reason: missing (a switch event says why)");
  EXPECT_EQ(
      error_of(header + "{\"seq\":0,\"t\":5,\"ev\":\"choice\",\"g\":0,\"n\":3,\"answer\":3}\n"),
      "tendril: t.trace:2: answer: 3 is not below n = 3");
  EXPECT_EQ(error_of(header + "{\"seq\":0,\"t\":5,\"ev\":\"spawn\",\"g\":\"one\"}\n"),
            "tendril: t.trace:2: g: must be an integer, not a string");
  EXPECT_EQ(error_of(header + "{\"seq\":0,\"t\":5,\"ev\":\"spawn\",\"g\":1,\"colour\":1}\n"),
            "tendril: t.trace:2: colour: unknown field");
  EXPECT_EQ(error_of(header + "{\"seq\":0,\"t\":5,\"ev\":\"spawn\",\"g\":1\n"),
            "tendril: t.trace:2: malformed JSON: expected '}' at column 34 (line ends early)");
  EXPECT_EQ(error_of(header + "{\"seq\":0,\"t\":5,\"ev\":\"spawn\",\"g\":1} x\n"),
            "tendril: t.trace:2: unexpected text after the JSON object");
  EXPECT_EQ(error_of(header + "\n"),
            "tendril: t.trace:2: empty line (each line holds one JSON object)");
  EXPECT_EQ(error_of(header + "{\"seq\":0,\"t\":5,\"ev\":\"spawn\",\"g\":1,\"name\":\"a\n"),
            "tendril: t.trace:2: name: unterminated string");
  EXPECT_EQ(error_of("\x89PNG\r\n"),
            "tendril: t.trace:1: malformed JSON: expected '{' at column 1");
}

}  // namespace

// A hostile name (here 1 MiB; a probe used 200 MB) keeps its first bytes and says how long it
// was; the cut falls on a UTF-8 boundary, and reading the trace back never cuts it again.
TEST(TraceFile, HugeNamesAreShortenedOnLoad) {
  auto trace_with = [](const std::string& name) {
    return header + "{\"seq\":0,\"t\":0,\"ev\":\"spawn\",\"g\":1,\"name\":\"" + name +
           "\"}\n{\"end\":1}\n";
  };
  const std::string huge(1 << 20, 'x');
  const tr::Trace t = tr::parse_trace(trace_with(huge), "mem");
  const std::string tail = " ... (1048576 bytes)";
  ASSERT_EQ(t.events.size(), 1u);
  EXPECT_EQ(t.events[0].name, std::string(tr::max_trace_text_bytes - tail.size(), 'x') + tail);
  EXPECT_EQ(tr::parse_trace(tr::format_trace(t), "again"), t);
  // Exactly at the limit: kept whole.
  const std::string at_limit(tr::max_trace_text_bytes, 'y');
  EXPECT_EQ(tr::parse_trace(trace_with(at_limit), "mem").events[0].name, at_limit);
  // 'é' is two bytes: after an 'a', the cut at 4078 bytes would split one, so it backs off to
  // the character before.
  std::string accents = "a";
  for (int i = 0; i < 5000; ++i) accents += "\xc3\xa9";
  const std::string cut = tr::parse_trace(trace_with(accents), "mem").events[0].name;
  std::string expected = "a";
  for (int i = 0; i < 2038; ++i) expected += "\xc3\xa9";
  EXPECT_EQ(cut, expected + " ... (10001 bytes)");
  EXPECT_LE(cut.size(), tr::max_trace_text_bytes);
}
