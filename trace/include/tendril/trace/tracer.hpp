// SPDX-License-Identifier: Apache-2.0
// tendril/trace/tracer.hpp: Tracer, the Observer that records a hub's flow trace in memory
// (tendril/trace/events.hpp). Recording is cheap: one compact record per event, with names
// resolved once per greenlet and object; trace() turns the records into a Trace.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
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
  // records() counts what was recorded so far (a switch and its block or wake count once).
  std::size_t records() const noexcept { return size_; }
  // clear() forgets every event and name recorded so far (for a hub that runs again).
  void clear();

  // The Observer's calls (tendril/sched/observer.hpp), each recorded as events. Switches, blocks
  // and wakes arrive through on_resume/on_return, one record each.
  void on_spawn(const Greenlet& child, const Greenlet* parent) override;
  void on_timer(const Greenlet* g, const char* reason) override;
  void on_io(const Greenlet* g, const char* what) override;
  void on_choice(ChoiceKind kind, std::uint32_t n, std::uint32_t answer) override;
  void on_exit(const Greenlet& g, const std::exception_ptr& error, bool killed) override;
  void on_kill(const Greenlet& target, const Greenlet* by) override;
  void on_fault(const Greenlet* g, const char* what, const std::string& detail) override;
  void on_resume(const Greenlet& g, Resume why, const char* reason,
                 const Waitable* object) override;
  void on_return(const Greenlet& g, const char* reason, const Waitable* object, bool dead) override;

 private:
  // Op is what one record stands for; a switch and the block or wake around it share a record,
  // so a sleep(0) costs two records, and trace() expands them into events.
  enum class Op : std::uint8_t {
    event,   // one event of record.kind
    park,    // block (unless dead) + switch greenlet -> hub
    resume,  // [wake or timeout +] switch hub -> greenlet, by Resume in `aux`
  };
  // Record is one or two events before names are attached. reason is a static string (the hub's
  // wait reasons are literals) unless text names an entry of texts_ (1-based, 0: none).
  struct Record {
    std::int64_t time_ns;
    const char* reason;
    std::uint64_t greenlet;
    std::uint64_t other;  // the other greenlet; for a choice, n
    std::uint64_t object;
    std::uint32_t text;
    std::uint32_t aux;  // choice: answer; resume: Resume; park: 1 if dead; | greenlet_object
    Op op;
    EventKind kind;
  };
  void add(Op op, EventKind kind, std::uint64_t greenlet, std::uint64_t other, const char* reason,
           std::uint64_t object = 0, std::uint32_t text = 0, std::uint32_t aux = 0) {
    if (size_ == capacity_) grow();
    chunks_[size_ / chunk_records][size_ % chunk_records] =
        Record{hub_.now_ns(), reason, greenlet, other, object, text, aux, op, kind};
    ++size_;
  }
  // object_key() without a call for the common case of a wait on nothing (sleep, sleep(0)).
  std::uint64_t key_of(const Waitable* object, std::uint32_t& text, std::uint32_t& aux) {
    text = 0;
    return object == nullptr ? 0 : object_key(object, text, aux);
  }
  void grow();
  // greenlet_object in Record::aux: `object` is a greenlet's id (a join), not an object's.
  static constexpr std::uint32_t greenlet_object = 0x100;
  // object_key() is what a record stores for object: its id (named once), a greenlet's id (with
  // greenlet_object set in aux), or a kept description (text) for an unnumbered one.
  std::uint64_t object_key(const Waitable* object, std::uint32_t& text, std::uint32_t& aux);
  std::uint32_t keep_text(std::string text);
  using Names = std::unordered_map<std::uint64_t, std::string>;
  void expand(const Record& r, Trace& out, Names& names) const;

  Hub& hub_;
  std::string test_;
  // Records live in fixed-size chunks: recording never copies what it already has, and clear()
  // keeps the chunks for the next run.
  static constexpr std::size_t chunk_records = 4096;
  std::vector<std::unique_ptr<Record[]>> chunks_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  std::vector<std::string> texts_;
  std::vector<std::string> object_names_;  // by object id; ids are dense from 1
  std::vector<bool> object_named_;
};

}  // namespace tendril::trace
