// SPDX-License-Identifier: Apache-2.0
// tendril/sched/observer.hpp: the observer hook. A hub with an Observer installed tells it about
// every spawn, context switch, block, wakeup, timer, fd readiness, choice, exit and kill, in the
// order they happen; trace/'s Tracer records them for flow graphs. With no observer installed
// each hook point costs one predictable branch. Reason strings are string literals (static
// storage): an observer may keep the pointers.
#pragma once

#include <cstdint>
#include <exception>
#include <string>

#include "tendril/sched/chooser.hpp"

namespace tendril {

class Greenlet;
class Waitable;

// Resume says why the hub switches into a greenlet.
enum class Resume : std::uint8_t {
  start,    // its first run
  wake,     // its wait ended normally (a sleep's timer counts as normal)
  timeout,  // its wait's deadline passed
  kill,     // an exception (GreenletExit, a Timeout scope's) is raised at its blocking point
};

// Observer receives the hub's events. A null Greenlet* means the hub itself. Every default does
// nothing, so an observer overrides only what it needs. Callbacks run on the hub's stack or in
// the running greenlet, must not block, switch or throw, and must not install another observer.
class Observer {
 public:
  // on_spawn(): child was started (or scheduled to start) by parent (nullptr: the hub).
  virtual void on_spawn(const Greenlet& /*child*/, const Greenlet* /*parent*/) {}
  // on_switch(): control passes from `from` to `to` (one of them is nullptr: the hub's stack).
  // reason is the wait `from` parks in ("sleep(0)", "Event.wait", "Queue.get", ..., "exit") when
  // switching to the hub, and why the hub resumes `to` ("start", "resume", "timeout", "kill").
  virtual void on_switch(const Greenlet* /*from*/, const Greenlet* /*to*/, const char* /*reason*/) {
  }
  // on_block(): g parks in `reason` on object (nullptr: nothing named); precedes its switch.
  virtual void on_block(const Greenlet& /*g*/, const char* /*reason*/, const Waitable* /*object*/) {
  }
  // on_wake(): g's wait (reason, object) ends and g is resumed; timed_out if its deadline did it.
  virtual void on_wake(const Greenlet& /*g*/, const char* /*reason*/, const Waitable* /*object*/,
                       bool /*timed_out*/) {}
  // on_timer(): a timer fired that ends g's wait (a sleep or a timeout); g may be nullptr.
  virtual void on_timer(const Greenlet* /*g*/, const char* /*reason*/) {}
  // on_io(): a file descriptor g waits on became ready ("readable", "writable" or
  // "readable+writable"), just before g's wait ends; reported by hubs with real I/O (LibevHub).
  virtual void on_io(const Greenlet* /*g*/, const char* /*what*/) {}
  // on_choice(): the simulated hub's Chooser picked answer of n alternatives of this kind.
  virtual void on_choice(ChoiceKind /*kind*/, std::uint32_t /*n*/, std::uint32_t /*answer*/) {}
  // on_exit(): g finished: with a value (error null, killed false), killed by GreenletExit, or
  // with the uncaught exception error.
  virtual void on_exit(const Greenlet& /*g*/, const std::exception_ptr& /*error*/,
                       bool /*killed*/) {}
  // on_kill(): by (nullptr: the hub, e.g. teardown or a deadlock) asks target to die.
  virtual void on_kill(const Greenlet& /*target*/, const Greenlet* /*by*/) {}
  // on_fault(): a simulated network fault took effect while g ran (nullptr: on the hub's stack):
  // what is "reset", "refused" or "partition" (literals), detail names the connection or the
  // addresses ("sim-client:40000 <-> 127.0.0.1:8000"). SimNet reports them.
  virtual void on_fault(const Greenlet* /*g*/, const char* /*what*/,
                        const std::string& /*detail*/) {}

  // The two calls the hub makes at every switch. By default they split into the calls above;
  // an observer that records every switch (trace::Tracer) overrides them to do one thing each.
  //
  // on_resume(): the hub switches into g for `why`; for wake and timeout, reason and object are
  // the wait that ends. Default: on_wake (for wake/timeout), then on_switch(nullptr, &g, ...)
  // with "start", "resume", "timeout" or "kill".
  virtual void on_resume(const Greenlet& g, Resume why, const char* reason, const Waitable* object);
  // on_return(): g switched back to the hub, blocked in reason on object, or dead (reason
  // "exit", object nullptr; on_exit came first). Default: on_block (unless dead), on_switch.
  virtual void on_return(const Greenlet& g, const char* reason, const Waitable* object, bool dead);

 protected:
  ~Observer() = default;
};

}  // namespace tendril
