// SPDX-License-Identifier: Apache-2.0
// viz_test.cpp: flow graphs (DOT structure for foo/bar and producer/consumer, windows, folding
// of repeats, the size guard), rendering through Graphviz to SVG/PNG/PDF, Perfetto export.
#include "tendril/viz.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "seeds.hpp"
#include "tendril/explore.hpp"
#include "tendril/net.hpp"
#include "tendril/trace.hpp"

namespace tr = tendril::trace;
namespace viz = tendril::viz;

namespace {

// The switch arrows of a flow graph, in order: "<from node> -> <to node> <label>", with the node
// names replaced by the lane they belong to (read from the node's label's first line).
std::vector<std::string> arrows(const std::string& dot) {
  std::map<std::string, std::string> lane_of;
  const std::regex node(R"re((n_\d+|lane_\d+|f_\d+) \[[^\]]*?label="([^"\\]*))re");
  const std::regex edge(R"re(^\s+(\w+) -> (\w+) \[label="([^"]*)")re");
  std::vector<std::string> out;
  std::istringstream in(dot);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, edge)) {
      std::string label = std::regex_replace(std::string(m[3]), std::regex(R"(\\n)"), " / ");
      out.push_back(lane_of.at(m[1]) + " -> " + lane_of.at(m[2]) + " " + label);
      continue;
    }
    for (std::sregex_iterator it(line.begin(), line.end(), node), end; it != end; ++it) {
      std::string label = (*it)[2];
      if (label.rfind("#", 0) == 0) label = label.substr(label.find(' ') + 1);  // "#2 foo"
      lane_of[(*it)[1]] = label;
    }
  }
  return out;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A synthetic trace: main and a partner ping-pong through the hub `rounds` times.
tr::Trace ping_pong(std::size_t rounds) {
  tr::Trace t;
  t.hub = "SimHub";
  t.test = "ping_pong";
  auto add = [&](tr::EventKind kind, std::uint64_t g, std::uint64_t other, std::string reason,
                 std::string name = {}) {
    tr::TraceEvent e;
    e.seq = t.events.size();
    e.time_ns = static_cast<std::int64_t>(e.seq);
    e.kind = kind;
    e.greenlet = g;
    e.other = other;
    e.reason = std::move(reason);
    e.name = std::move(name);
    t.events.push_back(std::move(e));
  };
  add(tr::EventKind::spawn, 1, 0, "", "main");
  add(tr::EventKind::spawn, 2, 1, "", "partner");
  for (std::size_t i = 0; i < rounds; ++i) {
    add(tr::EventKind::switch_, 0, 1, "resume");
    add(tr::EventKind::switch_, 1, 0, "sleep(0)");
    add(tr::EventKind::switch_, 0, 2, "resume");
    add(tr::EventKind::switch_, 2, 0, "sleep(0)");
  }
  return t;
}

TEST(Flow, FooBarHandsControlBackAndForthThroughTheHub) {
  std::ostringstream out;
  tr::Trace trace;
  seeds::foo_bar(out, &trace);
  const std::string dot = viz::flow_dot(trace);
  // Lanes left to right (the hub first), each a column; switch k is row k, time runs down.
  EXPECT_NE(dot.find("lane_0 [shape=plaintext, style=\"\", fontsize=12, label=\"hub\", width=1.6, "
                     "pos=\"0,0!\"]"),
            std::string::npos);
  EXPECT_NE(dot.find("lane_3 [shape=plaintext, style=\"\", fontsize=12, label=\"#3 bar\", "
                     "width=1.6, pos=\"510,0!\"]"),
            std::string::npos);
  EXPECT_NE(dot.find("n_2 [label=\"foo\\n0 ns\", pos=\"340,-138!\"]"), std::string::npos) << dot;
  EXPECT_LT(dot.find("label=\"#1 main\""), dot.find("label=\"#2 foo\""));
  EXPECT_LT(dot.find("label=\"#2 foo\""), dot.find("label=\"#3 bar\""));
  const std::vector<std::string> want = {
      "hub -> main start",  "main -> hub join / #2 'foo'",
      "hub -> foo start",   "foo -> hub sleep(0)",
      "hub -> bar start",   "bar -> hub sleep(0)",
      "hub -> foo resume",  "foo -> hub exit",
      "hub -> bar resume",  "bar -> hub exit",
      "hub -> main resume", "main -> hub exit",
  };
  EXPECT_EQ(arrows(dot), want);
  EXPECT_EQ(count(dot, "style=dashed, arrowhead=none"), 4u);  // a line down each lane
}

TEST(Flow, ProducerConsumerShowsQueueWaitsWithTheQueuesName) {
  std::ostringstream out;
  tr::Trace trace;
  seeds::producer_consumer(out, &trace);
  EXPECT_EQ(out.str(), "put a\ngot a\nput b\ngot b\nput c\ngot c\n");
  const std::vector<std::string> got = arrows(viz::flow_dot(trace));
  const std::vector<std::string> want = {
      "hub -> main start",      "main -> hub join / #2 'producer'",
      "hub -> producer start",  "producer -> hub Queue.put / Queue#1 'jobs'",
      "hub -> consumer start",  "consumer -> hub Queue.get / Queue#1 'jobs'",
      "hub -> producer resume", "producer -> hub Queue.put / Queue#1 'jobs'",
      "hub -> consumer resume", "consumer -> hub Queue.get / Queue#1 'jobs'",
      "hub -> producer resume", "producer -> hub exit",
      "hub -> consumer resume", "consumer -> hub exit",
      "hub -> main resume",     "main -> hub exit",
  };
  EXPECT_EQ(got, want);
}

TEST(Flow, TheSameTraceGivesTheSameBytesRunAfterRun) {
  std::ostringstream out;
  tr::Trace a, b;
  seeds::producer_consumer(out, &a);
  seeds::producer_consumer(out, &b);
  EXPECT_EQ(a, b);
  EXPECT_EQ(viz::flow_dot(a), viz::flow_dot(b));
}

TEST(Flow, WindowsBySequenceNumberAndTime) {
  const tr::Trace t = ping_pong(10);
  viz::FlowOptions by_seq;
  by_seq.from_seq = 6;  // switches are events 2..41
  by_seq.to_seq = 9;
  EXPECT_EQ(arrows(viz::flow_dot(t, by_seq)),
            (std::vector<std::string>{"hub -> main resume", "main -> hub sleep(0)",
                                      "hub -> partner resume", "partner -> hub sleep(0)"}));
  viz::FlowOptions by_time;
  by_time.from_time_ns = 40;
  by_time.collapse_repeats = false;
  EXPECT_EQ(arrows(viz::flow_dot(t, by_time)),
            (std::vector<std::string>{"hub -> partner resume", "partner -> hub sleep(0)"}));
}

TEST(Flow, RepeatedSwitchPatternsFoldIntoOneBlockAndANote) {
  const std::string dot = viz::flow_dot(ping_pong(1000));
  EXPECT_EQ(arrows(dot).size(), 4u);
  EXPECT_NE(dot.find("x 999 more: the 4 switches above repeat\\nseq 6..4001, 6 ns .. 4.0 us"),
            std::string::npos)
      << dot;
  viz::FlowOptions full;
  full.collapse_repeats = false;
  full.max_switches = 100000;
  EXPECT_EQ(arrows(viz::flow_dot(ping_pong(100), full)).size(), 400u);
}

TEST(Flow, AMillionSwitchesAreCutToTheSizeGuardWithANote) {
  viz::FlowOptions options;
  options.collapse_repeats = false;
  options.max_switches = 50;
  const std::string dot = viz::flow_dot(ping_pong(250'000), options);
  EXPECT_EQ(arrows(dot).size(), 50u);
  EXPECT_NE(dot.find("cut: showing 50 of 1000000 switches (up to seq 51)"), std::string::npos);
  EXPECT_LT(dot.size(), 40'000u);
}

class Render : public ::testing::Test {
 protected:
  void SetUp() override {
    // One folder per test: ctest runs the tests of this fixture in parallel processes.
    dir_ = std::filesystem::temp_directory_path() /
           (std::string("tendril-viz-test-") +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(Render, WritesValidSvgPngPdfAndDot) {
  std::ostringstream out;
  tr::Trace trace;
  seeds::foo_bar(out, &trace);
  viz::render_flow(trace, (dir_ / "flow.svg").string());
  viz::render_flow(trace, (dir_ / "flow.png").string());
  viz::render_flow(trace, (dir_ / "flow.pdf").string());
  viz::render_flow(trace, (dir_ / "flow.dot").string());
  const std::string svg = read_file(dir_ / "flow.svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find(">sleep(0)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">#2 foo</text>"), std::string::npos);
  const std::string png = read_file(dir_ / "flow.png");
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(read_file(dir_ / "flow.pdf").substr(0, 5), "%PDF-");
  EXPECT_EQ(read_file(dir_ / "flow.dot"), viz::flow_dot(trace));
}

TEST_F(Render, UnknownExtensionsAndBadDotSayWhatIsWrong) {
  const tr::Trace t = ping_pong(1);
  try {
    viz::render_flow(t, (dir_ / "flow.jpeg2").string());
    FAIL() << "no error";
  } catch (const viz::VizError& e) {
    EXPECT_NE(std::string(e.what()).find("use .dot, .svg, .png or .pdf"), std::string::npos);
  }
  try {
    viz::render_dot("digraph { a -> ", "svg", (dir_ / "x.svg").string());
    FAIL() << "no error";
  } catch (const viz::VizError& e) {
    EXPECT_NE(std::string(e.what()).find("Graphviz rejected the DOT text"), std::string::npos)
        << e.what();
  }
}

TEST_F(Render, AFailingExplorationDrawsItsFlowGraphBesideTheSchedule) {
  viz::install_flow_renderer();
  tendril::ExploreOptions o;
  o.test = "Viz.BankRace";
  o.policy = "random";
  o.schedules = 1000;
  o.artifacts = dir_.string();
  const tendril::ExploreResult r = tendril::explore(o, seeds::bank_race);
  tr::set_flow_renderer(nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.flow_file, r.schedule_file.substr(0, r.schedule_file.size() - 9) + ".svg");
  const std::string svg = read_file(r.flow_file);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("Viz.BankRace (SimHub)"), std::string::npos);
  EXPECT_NE(r.summary.find("tendril: its flow graph: " + r.flow_file), std::string::npos)
      << r.summary;
  EXPECT_EQ(tr::load_trace(r.trace_file).test, "Viz.BankRace");
}

// A failing exploration also traces a passing neighbour of its minimal schedule (one choice
// answered FIFO instead); the difference graph shows both runs from where they part ways.
TEST_F(Render, AFailureAndItsPassingNeighbourDrawSideBySide) {
  tendril::ExploreOptions o;
  o.test = "Viz.Neighbour";
  o.policy = "random";
  o.schedules = 1000;
  o.artifacts = dir_.string();
  const tendril::ExploreResult r = tendril::explore(o, seeds::bank_race);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.passing_trace_file, r.trace_file.substr(0, r.trace_file.size() - 6) + ".pass.trace");
  EXPECT_EQ(r.parting,
            "it passes when choice #7 is FIFO instead; the runs agree for 16 switches, then\n"
            "  passing: hub -> #2 withdraw a (start, seq 41)\n"
            "  failing: hub -> #3 withdraw b (resume; chose 2 of 2, not FIFO, seq 42)");
  const tr::Trace passing = tr::load_trace(r.passing_trace_file);
  const tr::Trace failing = tr::load_trace(r.trace_file);
  const tr::Parting parting = tr::part_ways(passing, failing);
  EXPECT_EQ(parting.common, 16u);
  EXPECT_FALSE(parting.identical);
  const std::string dot = viz::diff_dot(passing, failing);
  EXPECT_NE(dot.find("label=\"they part ways here\""), std::string::npos) << dot;
  EXPECT_NE(dot.find("Viz.Neighbour: a passing run (left) and a failing run (right)\\nfailed: #1 "
                     "main: std::logic_error: overdraft: balance is -60\\nthey agree for 16 "
                     "switches (grey), then part ways"),
            std::string::npos)
      << dot;
  // 6 shared switches of context in grey on each side, then each run's own.
  EXPECT_EQ(count(dot, "color=\"#bdc1c6\", fontcolor=\"#bdc1c6\""), 12u) << dot;
  EXPECT_EQ(count(dot, "label=\"FAILED\\n"), 1u) << dot;
  EXPECT_NE(dot.find("b_f_"), std::string::npos);  // the failure is on the right
  EXPECT_EQ(dot.find("a_f_"), std::string::npos);  // and not on the left
  const auto svg = dir_ / "diff.svg";
  viz::render_diff(passing, failing, svg.string());
  EXPECT_NE(read_file(svg).find("they part ways here"), std::string::npos);
  EXPECT_EQ(tr::part_ways(failing, failing).identical, true);
}

TEST(Perfetto, OneTrackPerGreenletSlicesAndAFlowPerSwitch) {
  std::ostringstream out;
  tr::Trace trace;
  seeds::foo_bar(out, &trace);
  std::ostringstream json;
  viz::write_perfetto(trace, json);
  const std::string j = json.str();
  EXPECT_EQ(j.rfind("{\"displayTimeUnit\":\"ns\"", 0), 0u);
  EXPECT_EQ(count(j, "\"name\":\"thread_name\""), 4u);  // hub, main, foo, bar
  EXPECT_NE(j.find("\"tid\":2,\"args\":{\"name\":\"#2 foo\"}"), std::string::npos);
  EXPECT_EQ(count(j, "\"ph\":\"s\""), 12u);  // one flow per switch
  EXPECT_EQ(count(j, "\"ph\":\"f\",\"bp\":\"e\""), 12u);
  EXPECT_EQ(count(j, "\"ph\":\"X\""), 12u + 1u);  // a slice per stretch, and the hub's last
  EXPECT_NE(j.find("\"name\":\"sleep(0)\",\"cat\":\"switch\",\"pid\":1,\"tid\":2,\"ts\":2.999"),
            std::string::npos)
      << j;
  EXPECT_EQ(j.substr(j.size() - 4), "\n]}\n");
}

}  // namespace

namespace {

// SecondChoiceAhead answers 1 at the second choice of a run and 0 (FIFO) everywhere else.
class SecondChoiceAhead final : public tendril::Chooser {
 public:
  std::uint32_t choose(const tendril::ChoicePoint&) override { return ++seen_ == 2 ? 1 : 0; }

 private:
  int seen_ = 0;
};

}  // namespace

// A failing run's flow graph shows the failure in the failing greenlet's lane (and in the
// title), the choice away from FIFO that led there, and who held the lock a greenlet waited on.
TEST(Flow, AFailureItsNonFifoChoiceAndLockHoldersAreDrawn) {
  using namespace std::chrono_literals;
  tendril::SimHub hub(std::make_unique<SecondChoiceAhead>());
  hub.set_error_handler([](tendril::Greenlet&, std::exception_ptr) {});
  tr::Trace trace;
  {
    tr::Tracer tracer(hub, "Flow.Failure");
    tendril::run(hub, [] {
      tendril::Lock lock("l");
      auto a = tendril::spawn("a", [&] {
        std::lock_guard<tendril::Lock> guard(lock);
        tendril::sleep(0s);
        throw std::runtime_error("boom");
      });
      auto b = tendril::spawn("b", [&] { std::lock_guard<tendril::Lock> guard(lock); });
      auto c = tendril::spawn("c", [] { tendril::sleep(0s); });
      tendril::joinall({a, b, c});
    });
    trace = tracer.trace();
  }
  const std::string dot = viz::flow_dot(trace);
  const std::vector<std::string> want = {
      "hub -> main start",
      "main -> hub join / #2 'a'",
      "hub -> a start",
      "a -> hub sleep(0)",
      "hub -> c * chose 2 of 3 (not FIFO) / start",  // c went ahead of b and a
      "c -> hub sleep(0)",
      "hub -> b start",
      "b -> hub Lock.acquire / Lock#1 'l' / held by #2 a",
      "hub -> a resume",
      "FAILED -> hub exit",  // a's lane: the failure's own box, then its exit
      "hub -> c resume",
      "c -> hub exit",
      "hub -> b resume",
      "b -> hub exit",
      "hub -> main resume",
      "main -> hub exit",
  };
  EXPECT_EQ(arrows(dot), want) << dot;
  // The failure box sits in a's lane (column 2: x = 340) and says what a died of; the title too.
  EXPECT_NE(dot.find("label=\"FAILED\\nstd::runtime_error: boom\", pos=\"340,"), std::string::npos)
      << dot;
  EXPECT_NE(dot.find("label=\"Flow.Failure (SimHub)\\nfailed: #2 a: std::runtime_error: boom\""),
            std::string::npos)
      << dot;
  // The marked edges are drawn heavier: the choice away from FIFO, and the failing exit.
  EXPECT_EQ(count(dot, "penwidth=2]"), 3u) << dot;
}

// A network fault is drawn on the switch that follows it, in red.
TEST(Flow, NetworkFaultsAreDrawn) {
  tendril::SimHub hub;
  tr::Trace trace;
  {
    tr::Tracer tracer(hub, "Flow.Fault");
    tendril::run(hub, [&] {
      tendril::Listener l = tendril::listen({"10.0.0.1", 80});
      hub.sim_net().refuse({"10.0.0.1", 80}, 1);
      try {
        tendril::connect({"10.0.0.1", 80});
      } catch (const std::system_error&) {
      }
      tendril::sleep(std::chrono::milliseconds(1));
    });
    trace = tracer.trace();
  }
  const std::vector<std::string> got = arrows(viz::flow_dot(trace));
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[1], "main -> hub network refused: sim-client:40000 -> 10.0.0.1:80 / sleep");
}

namespace {

// valid_utf8() says whether s is well-formed UTF-8 (no overlong forms or surrogates).
bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = p[i];
    const std::size_t len = c < 0x80         ? 1
                            : (c >> 5) == 6  ? 2
                            : (c >> 4) == 14 ? 3
                            : (c >> 3) == 30 ? 4
                                             : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
    }
    if ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] >= 0xA0) ||
        (c == 0xF0 && p[i + 1] < 0x90) || c == 0xC0 || c == 0xC1 || c > 0xF4) {
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

// Names with invalid UTF-8 (a trace may hold any bytes) are drawn with U+FFFD in their place:
// the SVG stays well-formed and the Perfetto JSON valid UTF-8.
TEST_F(Render, InvalidUtf8NamesAreReplaced) {
  tr::Trace t = ping_pong(1);
  t.events[1].name = "bad\xff\xfe name \xc0\xaf end \xed\xa0\x80";
  const std::string dot = viz::flow_dot(t);
  EXPECT_NE(dot.find("#2 bad\xef\xbf\xbd\xef\xbf\xbd name \xef\xbf\xbd\xef\xbf\xbd end"),
            std::string::npos)
      << dot;
  EXPECT_TRUE(valid_utf8(dot));
  const auto svg = dir_ / "utf8.svg";
  viz::render_flow(t, svg.string());
  EXPECT_TRUE(valid_utf8(read_file(svg)));
  std::ostringstream json;
  viz::write_perfetto(t, json);
  EXPECT_TRUE(valid_utf8(json.str()));
  EXPECT_NE(json.str().find("bad\xef\xbf\xbd"), std::string::npos);
}

// A trace with 200,000 greenlets of which a window shows two: only those lanes are drawn (and
// the lanes are found in one pass, not one per greenlet).
TEST(Flow, ManyGreenletsOnlyTheShownLanes) {
  tr::Trace t = ping_pong(1);
  for (std::uint64_t g = 3; g < 200'003; ++g) {
    tr::TraceEvent e;
    e.seq = t.events.size();
    e.time_ns = static_cast<std::int64_t>(e.seq);
    e.kind = tr::EventKind::spawn;
    e.greenlet = g;
    e.other = 1;
    t.events.push_back(e);
  }
  const std::string dot = viz::flow_dot(t);
  EXPECT_EQ(count(dot, "shape=plaintext"), 3u);  // hub, main, partner
  std::ostringstream json;
  viz::write_perfetto(t, json);
  EXPECT_EQ(count(json.str(), "\"thread_name\""), 200'003u);
}
