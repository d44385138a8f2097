// tracer.cpp: the in-memory flow tracer.
#include "tendril/trace/tracer.hpp"

#include <utility>

#include "tendril/sched/errors.hpp"
#include "tendril/sched/greenlet.hpp"

namespace tendril::trace {
namespace {

std::uint64_t id_of(const Greenlet* g) noexcept { return g != nullptr ? g->id() : 0; }

}  // namespace

Tracer::Tracer(Hub& hub, std::string test) : hub_(hub), test_(std::move(test)) {
  if (hub.observer() != nullptr) {
    throw UsageError("tendril::trace::Tracer: this hub already has an observer installed");
  }
  events_.reserve(1024);
  hub.set_observer(this);
}

Tracer::~Tracer() {
  if (hub_.observer() == this) hub_.set_observer(nullptr);
}

void Tracer::clear() {
  events_.clear();
  texts_.clear();
  greenlet_names_.clear();
  object_names_.clear();
}

void Tracer::add(EventKind kind, std::uint64_t greenlet, std::uint64_t other, const char* reason,
                 std::uint64_t object, std::uint32_t text, std::uint32_t n, std::uint32_t answer) {
  events_.push_back(Record{hub_.now_ns(), greenlet, other, object, reason, n, answer, text, kind});
}

std::uint32_t Tracer::keep_text(std::string text) {
  texts_.push_back(std::move(text));
  return static_cast<std::uint32_t>(texts_.size());
}

std::uint64_t Tracer::object_key(const Waitable* object, std::uint32_t& text) {
  text = 0;
  if (object == nullptr) return 0;
  const std::uint64_t id = object->object_id();
  if (id == 0) {
    // An object without a number (a greenlet being joined, a stream): keep its description.
    text = keep_text(object->describe());
    return 0;
  }
  if (object_names_.find(id) == object_names_.end()) object_names_.emplace(id, object->describe());
  return id;
}

void Tracer::on_spawn(const Greenlet& child, const Greenlet* parent) {
  greenlet_names_[child.id()] = child.name();
  add(EventKind::spawn, child.id(), id_of(parent), nullptr);
}

void Tracer::on_switch(const Greenlet* from, const Greenlet* to, const char* reason) {
  add(EventKind::switch_, id_of(from), id_of(to), reason);
}

void Tracer::on_block(const Greenlet& g, const char* reason, const Waitable* object) {
  std::uint32_t text = 0;
  const std::uint64_t key = object_key(object, text);
  add(EventKind::block, g.id(), 0, reason, key, text);
}

void Tracer::on_wake(const Greenlet& g, const char* reason, const Waitable* object,
                     bool timed_out) {
  std::uint32_t text = 0;
  const std::uint64_t key = object_key(object, text);
  add(EventKind::wake, g.id(), 0, timed_out ? "timeout" : reason, key, text);
}

void Tracer::on_timer(const Greenlet* g, const char* reason) {
  add(EventKind::timer, id_of(g), 0, reason);
}

void Tracer::on_choice(ChoiceKind kind, std::uint32_t n, std::uint32_t answer) {
  add(EventKind::choice, 0, 0, to_string(kind), 0, 0, n, answer);
}

void Tracer::on_exit(const Greenlet& g, const std::exception_ptr& error, bool killed) {
  if (killed) {
    add(EventKind::exit, g.id(), 0, "GreenletExit");
  } else if (error) {
    add(EventKind::exit, g.id(), 0, nullptr, 0, keep_text(describe_exception(error)));
  } else {
    add(EventKind::exit, g.id(), 0, "value");
  }
}

void Tracer::on_kill(const Greenlet& target, const Greenlet* by) {
  add(EventKind::kill, target.id(), id_of(by), nullptr);
}

Trace Tracer::trace() const {
  Trace out;
  out.hub = hub_.hub_name();
  out.test = test_;
  out.events.reserve(events_.size());
  std::uint64_t seq = 0;
  for (const Record& r : events_) {
    TraceEvent e;
    e.seq = seq++;
    e.time_ns = r.time_ns;
    e.kind = r.kind;
    e.greenlet = r.greenlet;
    e.other = r.other;
    e.object = r.object;
    e.n = r.n;
    e.answer = r.answer;
    const std::string* text = r.text != 0 ? &texts_[r.text - 1] : nullptr;
    switch (r.kind) {
      case EventKind::spawn: {
        auto it = greenlet_names_.find(r.greenlet);
        if (it != greenlet_names_.end()) e.name = it->second;
        break;
      }
      case EventKind::exit:
        e.reason = text != nullptr ? *text : std::string(r.reason != nullptr ? r.reason : "");
        break;
      case EventKind::block:
      case EventKind::wake:
        if (r.reason != nullptr) e.reason = r.reason;
        if (text != nullptr) {
          e.name = *text;
        } else if (r.object != 0) {
          e.name = object_names_.at(r.object);
        }
        break;
      default:
        if (r.reason != nullptr) e.reason = r.reason;
        break;
    }
    out.events.push_back(std::move(e));
  }
  return out;
}

}  // namespace tendril::trace
