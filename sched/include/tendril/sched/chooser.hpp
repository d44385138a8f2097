// SPDX-License-Identifier: Apache-2.0
// tendril/sched/chooser.hpp: the Chooser seam, through which every nondeterministic choice of a
// simulated run passes (which ready callback runs next, which of several timers due at the same
// instant fires first, user-visible randomness). Policies live in sim/; recording and replay in
// trace/.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace tendril {

class Greenlet;
class Waitable;
struct Callback;

// ChoiceKind says what a choice decides.
enum class ChoiceKind : std::uint8_t {
  ready,   // which queued callback runs next
  timer,   // which of the timers due at the same instant fires first
  random,  // a number a greenlet drew with random_below()
};

// to_string() names a ChoiceKind as schedule files spell it ("ready", "timer", "random").
const char* to_string(ChoiceKind kind) noexcept;

// Action says what an alternative does to what it names, as schedule files spell it:
//   start    a greenlet's first run
//   yield    a greenlet resumed after sleep(0)
//   wake     a greenlet resumed because the wait it was in ended (an Event set, a join...)
//   timer    a greenlet resumed by its timed wait's timer (sleep(d), a wait's deadline)
//   kill     an exception delivered into a greenlet (kill(), throw_in, GreenletExit)
//   timeout  a Timeout scope firing in its greenlet
//   links    a dead greenlet's links and joiners notified
//   notify   a primitive (Event, Queue, AsyncResult...) notifying its waiters
//   call     a callback scheduled as a plain function
//   draw     a random draw (random_below), for the greenlet that drew
//   ?        not known (a schedule of format version 1 or 2)
enum class Action : std::uint8_t {
  unknown,
  start,
  yield,
  wake,
  timer,
  kill,
  timeout,
  links,
  notify,
  call,
  draw,
};

// to_string() names an Action as above; action_from() reads one back (false if unknown text).
const char* to_string(Action action) noexcept;
bool action_from(const std::string& text, Action& action) noexcept;

// Alternative names one alternative of a choice by what it would run: a greenlet (by its
// spawn-order id) or a primitive (Event, Queue... by its creation-order id). Both ids are stable
// across runs and builds; the pointers are valid only during the choice.
struct Alternative {
  std::uint64_t greenlet_id = 0;
  std::uint64_t object_id = 0;
  const Greenlet* greenlet = nullptr;
  const Waitable* object = nullptr;
  Action action = Action::unknown;  // what running it does
  // key() folds the identity into one number (0 when unknown), for priorities and hashes.
  std::uint64_t key() const noexcept {
    return greenlet_id != 0 ? greenlet_id : (object_id != 0 ? object_id | (1ULL << 63) : 0);
  }
  // describe() renders "#3 'worker'" or "Queue#2 'inbox'" or "?" when unknown.
  std::string describe() const;
};

// identify() tells which greenlet or primitive a queued callback would run, and what it would
// do (see Alternative); action_of(cb) is only the latter.
Alternative identify(const Callback& cb) noexcept;
Action action_of(const Callback& cb) noexcept;

// ChoicePoint describes one decision while it is being made: its kind, its n >= 2
// alternatives, and (for ready and timer choices) what each alternative would run.
class ChoicePoint {
 public:
  ChoicePoint(ChoiceKind kind_of_choice, std::uint32_t alternatives)
      : kind(kind_of_choice), n(alternatives) {}
  const ChoiceKind kind;
  const std::uint32_t n;
  // alternative(i) names alternative i, for i < n (empty for random draws).
  virtual Alternative alternative(std::uint32_t i) const = 0;
  // keys() writes alternative(i).key() for every i into out[0..n) in one call (policies that
  // weigh every alternative, like PCT, use it on each choice).
  virtual void keys(std::uint64_t* out) const {
    for (std::uint32_t i = 0; i < n; ++i) out[i] = alternative(i).key();
  }
  // key(i) is alternative(i).key(), cheaper (no pointers, no name).
  virtual std::uint64_t key(std::uint32_t i) const { return alternative(i).key(); }
  // action(i) is alternative(i).action, cheaper.
  virtual Action action(std::uint32_t i) const { return alternative(i).action; }
  // chosen_action(answer) is what the answer did, for records (a random draw: Action::draw).
  Action chosen_action(std::uint32_t answer) const {
    return kind == ChoiceKind::random ? Action::draw : action(answer);
  }
  // chosen(answer) is what the answer ran, for records: the alternative, or for a random draw
  // the greenlet that drew.
  Alternative chosen(std::uint32_t answer) const {
    return alternative(kind == ChoiceKind::random ? 0 : answer);
  }

 protected:
  ~ChoicePoint() = default;
};

// ChoiceEvent is a decision as made: where in the run, what was asked, what was answered and
// what that ran, and a running hash of every decision so far (of the steps and times too, so a
// program that changed between two choices is caught at the next one). Plain data: the hub
// builds one per choice when a chooser wants records.
struct ChoiceEvent {
  std::uint64_t index = 0;  // 0-based count of choices in this run
  std::uint64_t step = 0;   // the hub's step count when the choice was made
  std::int64_t time_ns = 0;
  ChoiceKind kind = ChoiceKind::ready;
  // action: what the answer did (not in the running hash: schedule files of format version 1
  // and 2 do not know it, and the hash of the same run must not depend on the file's version).
  Action action = Action::unknown;
  std::uint32_t n = 0;
  std::uint32_t answer = 0;
  std::uint64_t chosen_key = 0;  // Alternative::key() of the answer (for random: the drawer)
  std::uint64_t hash = 0;
};

// ChoiceRecord is a ChoiceEvent with the name of what was chosen, as schedule files hold it.
struct ChoiceRecord : ChoiceEvent {
  std::string chosen_name;  // Alternative::describe() of the answer
};

// schedule_hash_basis is the running hash before any choice; next_schedule_hash() folds one
// record into it: for each of kind, n, answer, chosen key, steps since previous_step and time,
// h = (h xor v) * 0x9e3779b97f4a7c15, then h ^= h >> 29.
inline constexpr std::uint64_t schedule_hash_basis = 0xcbf29ce484222325ULL;
inline std::uint64_t next_schedule_hash(std::uint64_t previous, const ChoiceEvent& record,
                                        std::uint64_t previous_step) noexcept {
  std::uint64_t h = previous;
  const std::uint64_t fields[] = {static_cast<std::uint64_t>(record.kind),
                                  record.n,
                                  record.answer,
                                  record.chosen_key,
                                  record.step - previous_step,
                                  static_cast<std::uint64_t>(record.time_ns)};
  for (std::uint64_t v : fields) {
    h = (h ^ v) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;
  }
  return h;
}

// ChoiceLog holds a recorder's ChoiceEvents and the names of what they chose. A recorder lends
// it to the hub (Chooser::inline_log()), which then appends each choice's record itself instead
// of calling chosen(): no virtual call and no copy per choice. The records are the ones chosen()
// would have received.
class ChoiceLog {
 public:
  ChoiceLog() { events_.reserve(256); }
  // append() adds the next record; next() adds a blank one for the caller to fill in place.
  void append(const ChoiceEvent& event) { events_.push_back(event); }
  ChoiceEvent& next() { return events_.emplace_back(); }
  // named() says whether key (Alternative::key()) has its name already; name() learns it from
  // the alternative it keys, once (naming costs a string, so callers ask named() first).
  bool named(std::uint64_t key) const noexcept {
    return key < greenlet_named_.size() && greenlet_named_[key] != 0;
  }
  void name(std::uint64_t key, const Alternative& alternative);
  // events() are the records in order; name_of(key) renders what key named, as
  // Alternative::describe() did when it was first chosen ("?" if never named).
  const std::vector<ChoiceEvent>& events() const noexcept { return events_; }
  std::string name_of(std::uint64_t key) const;

 private:
  std::vector<ChoiceEvent> events_;
  // Greenlet keys are small (spawn order): a flag by id, and "#<id>" is rendered when asked.
  std::vector<std::uint8_t> greenlet_named_;
  // Names of named greenlets, and the descriptions of every other key (objects, unknown).
  std::unordered_map<std::uint64_t, std::string> names_;  // looked up, never iterated
};

// Chooser answers choose(point) with a number in [0, point.n). A schedule is the sequence of
// answers. 0 is always the default: gevent's FIFO order.
class Chooser {
 public:
  virtual ~Chooser() = default;
  // choose() picks one of point.n >= 2 alternatives. The hub calls it only from its own thread.
  virtual std::uint32_t choose(const ChoicePoint& point) = 0;
  // always_default() promises that every answer is 0 and that no record is wanted; the hub then
  // skips building choice points at all (Fifo's fast path).
  virtual bool always_default() const { return false; }
  // wants_records() makes the hub build a ChoiceEvent after every choice and pass it to
  // chosen() (recording and replay need it; plain policies skip the cost). Like
  // always_default(), inline_log() and policy(), the hub asks it once, when it adopts the chooser.
  virtual bool wants_records() const { return false; }
  // chosen() receives the event of the choice just made, when wants_records(), with its choice
  // point (valid only during the call): point.chosen(record.answer) names what ran; naming costs
  // a string, so recorders name each key once.
  virtual void chosen(const ChoiceEvent& record, const ChoicePoint& point) {
    (void)record;
    (void)point;
  }
  // inline_log() is a recorder's log, which the hub then fills itself (see ChoiceLog) instead of
  // calling chosen(); nullptr (the default) keeps chosen().
  virtual ChoiceLog* inline_log() noexcept { return nullptr; }
  // policy() is the chooser whose choose() makes the decisions: this one, or for a wrapper that
  // only records (RecordingChooser), the policy it wraps; the hub asks it directly, and a policy
  // that is always_default() is then answered inline.
  virtual Chooser* policy() noexcept { return this; }
  // describe() names the policy and its parameters (for example "random(seed=7)"), for reports.
  virtual std::string describe() const { return "custom chooser"; }
};

}  // namespace tendril
