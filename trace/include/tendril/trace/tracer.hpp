// tendril/trace/tracer.hpp: Tracer, the Observer that records a hub's flow trace in memory
// (tendril/trace/events.hpp). Recording is cheap: one compact record per event, with names
// resolved once per greenlet and object; trace() turns the records into a Trace.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tendril/sched/hub.hpp"
#include "tendril/sched/observer.hpp"
#include "tendril/trace/events.hpp"

namespace tendril::trace {

// Tracer records every event of one hub while it is installed. Construct it before run() (or
// from the hub's stack); the destructor uninstalls it. One tracer per hub at a time.
//
//   SimHub hub;
//   trace::Tracer tracer(hub, "foo_bar");
//   run(hub, [] { ... });
//   trace::save_trace(tracer.trace(), "foo_bar.trace");
class Tracer final : public Observer {
 public:
  // Tracer() installs itself as hub's observer; throws UsageError if hub already has one.
  explicit Tracer(Hub& hub, std::string test = {});
  // ~Tracer() uninstalls itself (if still installed).
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // trace() is everything recorded so far, as a Trace (hub name, test, events with seq 0..n-1).
  Trace trace() const;
  // size() counts the events recorded so far.
  std::size_t size() const noexcept { return events_.size(); }
  // clear() forgets every event and name recorded so far (for a hub that runs again).
  void clear();

  void on_spawn(const Greenlet& child, const Greenlet* parent) override;
  void on_switch(const Greenlet* from, const Greenlet* to, const char* reason) override;
  void on_block(const Greenlet& g, const char* reason, const Waitable* object) override;
  void on_wake(const Greenlet& g, const char* reason, const Waitable* object,
               bool timed_out) override;
  void on_timer(const Greenlet* g, const char* reason) override;
  void on_choice(ChoiceKind kind, std::uint32_t n, std::uint32_t answer) override;
  void on_exit(const Greenlet& g, const std::exception_ptr& error, bool killed) override;
  void on_kill(const Greenlet& target, const Greenlet* by) override;

 private:
  // Record is one event before names are attached: reason is a static string (the hub's wait
  // reasons are literals) unless text_index names an entry of texts_.
  struct Record {
    std::int64_t time_ns;
    std::uint64_t greenlet;
    std::uint64_t other;
    std::uint64_t object;
    const char* reason;
    std::uint32_t n;
    std::uint32_t answer;
    std::uint32_t text;  // 1-based index into texts_ (a dynamic reason or object name), 0: none
    EventKind kind;
  };
  void add(EventKind kind, std::uint64_t greenlet, std::uint64_t other, const char* reason,
           std::uint64_t object = 0, std::uint32_t text = 0, std::uint32_t n = 0,
           std::uint32_t answer = 0);
  std::uint64_t object_key(const Waitable* object, std::uint32_t& text);
  std::uint32_t keep_text(std::string text);

  Hub& hub_;
  std::string test_;
  std::vector<Record> events_;
  std::vector<std::string> texts_;
  std::map<std::uint64_t, std::string> greenlet_names_;
  std::map<std::uint64_t, std::string> object_names_;
};

}  // namespace tendril::trace
