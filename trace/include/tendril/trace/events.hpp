// SPDX-License-Identifier: Apache-2.0
// tendril/trace/events.hpp: the flow-trace data model. A Trace is what a Tracer records from a hub
// (every spawn, context switch, block, wakeup, timer, I/O readiness, choice, exit and kill) and
// what a trace file holds (trace/TRACE_FORMAT.md); viz/ renders it as a flow graph or exports it
// for Perfetto. Ids are stable across runs: greenlets are numbered in spawn order (1 = main, 0 =
// the hub itself), objects (events, queues, locks) in creation order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tendril::trace {

// EventKind is what happened. The meaning of TraceEvent's fields per kind is given below.
enum class EventKind : std::uint8_t {
  spawn,    // greenlet = the new greenlet, other = its parent (0: the hub), name = its name
  switch_,  // greenlet = from, other = to (0: the hub's lane), reason = why (see below)
  block,    // greenlet blocks: reason = the wait ("sleep", "Event.wait", "Queue.get", "join", ...),
            // object = what it waits on (0: nothing), name = the object's description,
            // other = the greenlet holding that object (a Lock's holder; 0: none)
  wake,     // greenlet is made ready: other = the greenlet that caused it (0: the hub: a timer,
            // I/O, a callback), reason = the wait it ends, object as in block
  timer,    // a timer fired: greenlet = whose wait it ends (0: none), reason ("sleep", "timeout")
  io,       // a stream or fd became ready: greenlet = the waiter, reason ("readable", "writable")
  choice,   // the simulated hub chose: n alternatives, answer (0-based), reason = the kind
            // ("ready", "timer", "random")
  exit,     // greenlet finished: reason = "value", or the exception's text
  kill,     // other kills greenlet (other 0: the hub, e.g. at teardown)
  fault,    // a simulated network fault took effect while greenlet ran (0: the hub): reason =
            // "reset", "refused" or "partition", name = the connection or addresses
};

// Switch reasons (EventKind::switch_). A greenlet switching to the hub gives the wait it parks
// in ("sleep(0)", "sleep", "Event.wait", "Queue.get", "Lock.acquire", "join", "recv", ...) or
// "exit"; the hub switching to a greenlet gives "start", "resume", "timeout" or "kill".

// TraceEvent is one event. seq numbers events from 0 without gaps; time_ns is the hub's clock
// (virtual ns on SimHub, monotonic ns on LibevHub) when it happened.
struct TraceEvent {
  std::uint64_t seq = 0;
  std::int64_t time_ns = 0;
  EventKind kind = EventKind::switch_;
  std::uint64_t greenlet = 0;
  std::uint64_t other = 0;
  std::uint64_t object = 0;
  std::string reason;
  std::string name;
  std::uint32_t n = 0;
  std::uint32_t answer = 0;

  friend bool operator==(const TraceEvent&, const TraceEvent&) = default;
};

// Trace is a whole recording: which hub and test produced it, and its events in order.
struct Trace {
  std::string hub;   // "SimHub" or "LibevHub"
  std::string test;  // the test's or program's identity, may be empty
  std::vector<TraceEvent> events;

  // greenlet_name() is the name given at spawn (or "hub" for 0, "main" for 1 when unnamed,
  // "greenlet-<id>" otherwise).
  std::string greenlet_name(std::uint64_t id) const;

  friend bool operator==(const Trace&, const Trace&) = default;
};

// last_steps() tells a run's end in text, for test logs: one line per greenlet that ran (in
// spawn order) with its last per_greenlet running stretches, each "seq: why it was resumed ->
// where it stopped" (the wait and its object, who held it, or "FAILED: <exception>"), a '*'
// marking a resume that a choice away from FIFO made (and random draws other than 0).
std::string last_steps(const Trace& t, std::size_t per_greenlet = 4);

// Parting is where two runs (of one test, under two schedules) part ways: their switches agree
// for the first `common`, then a and b say what each did next ("hub -> #3 b (resume; chose 2 of
// 3, not FIFO, seq 41)", or "the run ends"). identical: they never part.
struct Parting {
  std::size_t common = 0;
  bool identical = false;
  std::string a, b;
};
// part_ways() compares two traces switch by switch (who switched to whom, why, on what).
Parting part_ways(const Trace& a, const Trace& b);

// to_string()/parse_event_kind() convert kinds to and from their file names ("spawn", "switch",
// "block", "wake", "timer", "io", "choice", "exit", "kill", "fault"); parse returns false if
// unknown.
std::string_view to_string(EventKind kind) noexcept;
bool parse_event_kind(std::string_view text, EventKind& out) noexcept;

}  // namespace tendril::trace
