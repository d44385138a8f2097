// SPDX-License-Identifier: Apache-2.0
// story.cpp: the text report of a run's last steps, per greenlet, for test logs.
#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tendril/trace/events.hpp"

namespace tendril::trace {

std::string last_steps(const Trace& t, std::size_t per_greenlet) {
  struct Lane {
    std::vector<std::string> steps;
    std::size_t total = 0;
  };
  std::map<std::uint64_t, std::string> names;
  std::map<std::uint64_t, Lane> lanes;  // by greenlet id: spawn order
  struct Blocked {
    std::string name;
    std::uint64_t holder;
  };
  std::map<std::uint64_t, Blocked> blocked;
  std::map<std::uint64_t, std::string> failed;
  std::map<std::uint64_t, std::string> open;  // greenlet -> its running stretch so far
  bool chosen = false;                        // the next resume follows a non-FIFO choice
  auto name_of = [&](std::uint64_t id) {
    auto it = names.find(id);
    if (it != names.end()) return "#" + std::to_string(id) + " " + it->second;
    return "#" + std::to_string(id) + (id == 1 ? std::string(" main") : std::string());
  };
  for (const TraceEvent& e : t.events) {
    switch (e.kind) {
      case EventKind::spawn:
        if (!e.name.empty()) names[e.greenlet] = e.name;
        break;
      case EventKind::choice:
        if (e.answer != 0 && e.reason != "random") chosen = true;
        if (e.answer != 0 && e.reason == "random") {
          // A draw happens while a greenlet runs: note it in the open stretch.
          for (auto& [id, text] : open) {
            text += " (drew " + std::to_string(e.answer) + " of " + std::to_string(e.n) + " *)";
          }
        }
        break;
      case EventKind::block:
        blocked[e.greenlet] = {e.name, e.other};
        break;
      case EventKind::fault:
        if (open.count(e.greenlet) != 0) open[e.greenlet] += " (network " + e.reason + ")";
        break;
      case EventKind::exit:
        if (e.reason != "value" && e.reason != "GreenletExit") {
          std::string text = e.reason;  // one line per greenlet: a multi-line message is joined
          for (char& c : text) c = c == '\n' ? ' ' : c;
          failed[e.greenlet] = std::move(text);
        }
        break;
      case EventKind::switch_:
        if (e.greenlet == 0) {  // the hub resumes e.other
          open[e.other] = std::to_string(e.seq) + ": " + (chosen ? "*" : "") + e.reason;
          chosen = false;
        } else {  // e.greenlet switches to the hub
          std::string step = open.count(e.greenlet) != 0 ? open[e.greenlet] : "?";
          open.erase(e.greenlet);
          if (e.reason == "exit" && failed.count(e.greenlet) != 0) {
            step += " -> FAILED: " + failed[e.greenlet];
          } else {
            step += " -> " + e.reason;
            auto b = blocked.find(e.greenlet);
            if (b != blocked.end()) {
              if (!b->second.name.empty()) step += " " + b->second.name;
              if (b->second.holder != 0) step += " held by " + name_of(b->second.holder);
              blocked.erase(b);
            }
          }
          Lane& lane = lanes[e.greenlet];
          lane.steps.push_back(std::move(step));
          ++lane.total;
          if (lane.steps.size() > per_greenlet) lane.steps.erase(lane.steps.begin());
        }
        break;
      default:
        break;
    }
  }
  std::string out;
  std::size_t width = 0;
  for (const auto& [id, lane] : lanes) width = std::max(width, name_of(id).size());
  for (const auto& [id, lane] : lanes) {
    std::string name = name_of(id);
    name.resize(width, ' ');
    out += "  " + name + "  " + (lane.total > lane.steps.size() ? "... | " : "");
    for (std::size_t i = 0; i < lane.steps.size(); ++i) {
      out += (i ? " | " : "") + lane.steps[i];
    }
    out += "\n";
  }
  return out;
}

}  // namespace tendril::trace

namespace tendril::trace {
namespace {

// One switch as part_ways() compares it, and how it reads.
struct Step {
  std::uint64_t seq;
  std::uint64_t from, to;
  std::string reason;
  std::string object;
  std::string choice;  // a choice away from FIFO that led to it
};

std::vector<Step> steps_of(const Trace& t) {
  std::vector<Step> out;
  std::map<std::uint64_t, std::string> blocked;
  std::string choice;
  for (const TraceEvent& e : t.events) {
    if (e.kind == EventKind::block) {
      blocked[e.greenlet] = e.name;
    } else if (e.kind == EventKind::choice && e.answer != 0) {
      choice = e.reason == "random"
                   ? "drew " + std::to_string(e.answer) + " of " + std::to_string(e.n)
                   : "chose " + std::to_string(e.answer + 1) + " of " + std::to_string(e.n) +
                         ", not FIFO";
    } else if (e.kind == EventKind::switch_) {
      Step s{e.seq, e.greenlet, e.other, e.reason, {}, std::exchange(choice, {})};
      auto it = blocked.find(e.greenlet);
      if (e.greenlet != 0 && it != blocked.end()) {
        s.object = std::move(it->second);
        blocked.erase(it);
      }
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::string describe_step(const Trace& t, const Step& s) {
  auto name = [&](std::uint64_t id) {
    return id == 0 ? std::string("hub") : "#" + std::to_string(id) + " " + t.greenlet_name(id);
  };
  std::string out = name(s.from) + " -> " + name(s.to) + " (" + s.reason;
  if (!s.object.empty()) out += " " + s.object;
  if (!s.choice.empty()) out += "; " + s.choice;
  return out + ", seq " + std::to_string(s.seq) + ")";
}

}  // namespace

Parting part_ways(const Trace& a, const Trace& b) {
  const std::vector<Step> sa = steps_of(a), sb = steps_of(b);
  Parting p;
  while (p.common < sa.size() && p.common < sb.size()) {
    const Step& x = sa[p.common];
    const Step& y = sb[p.common];
    if (x.from != y.from || x.to != y.to || x.reason != y.reason || x.object != y.object) break;
    ++p.common;
  }
  p.identical = p.common == sa.size() && p.common == sb.size();
  p.a = p.common < sa.size() ? describe_step(a, sa[p.common]) : "the run ends";
  p.b = p.common < sb.size() ? describe_step(b, sb[p.common]) : "the run ends";
  return p;
}

}  // namespace tendril::trace
