// SPDX-License-Identifier: Apache-2.0
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
  hub.set_observer(this);
}

Tracer::~Tracer() {
  if (hub_.observer() == this) hub_.set_observer(nullptr);
}

void Tracer::clear() {
  size_ = 0;
  texts_.clear();
  object_names_.clear();
  object_named_.clear();
}

std::uint32_t Tracer::keep_text(std::string text) {
  texts_.push_back(std::move(text));
  return static_cast<std::uint32_t>(texts_.size());
}

void Tracer::grow() {
  chunks_.push_back(std::make_unique_for_overwrite<Record[]>(chunk_records));
  capacity_ += chunk_records;
}

std::uint64_t Tracer::object_key(const Waitable* object, std::uint32_t& text, std::uint32_t& aux) {
  const std::uint64_t id = object->object_id();
  if (id == 0) {
    if (const Greenlet* g = object->as_greenlet()) {
      aux |= greenlet_object;
      return g->id();
    }
    // An object without a number (a stream, a user's Waitable): keep its description.
    text = keep_text(object->describe());
    return 0;
  }
  if (id >= object_named_.size()) {
    object_named_.resize(id + 1);
    object_names_.resize(id + 1);
  }
  if (!object_named_[id]) {
    object_named_[id] = true;
    object_names_[id] = object->describe();
  }
  return id;
}

void Tracer::on_spawn(const Greenlet& child, const Greenlet* parent) {
  // Unnamed greenlets (the bulk of a big run) cost no text.
  const std::uint32_t text = child.name().empty() ? 0 : keep_text(child.name());
  add(Op::event, EventKind::spawn, child.id(), id_of(parent), nullptr, 0, text);
}

void Tracer::on_resume(const Greenlet& g, Resume why, const char* reason, const Waitable* object) {
  std::uint32_t text = 0, aux = static_cast<std::uint32_t>(why);
  const std::uint64_t key =
      why == Resume::wake || why == Resume::timeout ? key_of(object, text, aux) : 0;
  add(Op::resume, EventKind::switch_, g.id(), 0, reason, key, text, aux);
}

void Tracer::on_return(const Greenlet& g, const char* reason, const Waitable* object, bool dead) {
  std::uint32_t text = 0, aux = dead ? 1 : 0;
  const std::uint64_t key = key_of(object, text, aux);
  // Who holds what g now waits on (a Lock's holder): the block event names it.
  const std::uint64_t holder = object != nullptr ? id_of(object->holder()) : 0;
  add(Op::park, EventKind::switch_, g.id(), holder, reason, key, text, aux);
}

void Tracer::on_timer(const Greenlet* g, const char* reason) {
  add(Op::event, EventKind::timer, id_of(g), 0, reason);
}

void Tracer::on_io(const Greenlet* g, const char* what) {
  add(Op::event, EventKind::io, id_of(g), 0, what);
}

void Tracer::on_choice(ChoiceKind kind, std::uint32_t n, std::uint32_t answer) {
  add(Op::event, EventKind::choice, 0, n, to_string(kind), 0, 0, answer);
}

void Tracer::on_exit(const Greenlet& g, const std::exception_ptr& error, bool killed) {
  if (killed) {
    add(Op::event, EventKind::exit, g.id(), 0, "GreenletExit");
  } else if (error) {
    add(Op::event, EventKind::exit, g.id(), 0, nullptr, 0, keep_text(describe_exception(error)));
  } else {
    add(Op::event, EventKind::exit, g.id(), 0, "value");
  }
}

void Tracer::on_kill(const Greenlet& target, const Greenlet* by) {
  add(Op::event, EventKind::kill, target.id(), id_of(by), nullptr);
}

void Tracer::on_fault(const Greenlet* g, const char* what, const std::string& detail) {
  add(Op::event, EventKind::fault, id_of(g), 0, what, 0, keep_text(detail));
}

void Tracer::expand(const Record& r, Trace& out, Names& names) const {
  const std::string* text = r.text != 0 ? &texts_[r.text - 1] : nullptr;
  auto event = [&](EventKind kind) -> TraceEvent& {
    TraceEvent& e = out.events.emplace_back();
    e.seq = out.events.size() - 1;
    e.time_ns = r.time_ns;
    e.kind = kind;
    e.greenlet = r.greenlet;
    return e;
  };
  auto name_object = [&](TraceEvent& e) {
    if (text != nullptr) {
      e.name = *text;
    } else if ((r.aux & greenlet_object) != 0) {
      // As Greenlet::describe() puts it.
      e.name = "#" + std::to_string(r.object);
      auto it = names.find(r.object);
      if (it != names.end()) e.name += " '" + it->second + "'";
    } else if (r.object != 0) {
      e.object = r.object;
      e.name = object_names_[r.object];
    }
  };
  const std::uint32_t aux = r.aux & ~greenlet_object;
  auto reason = [&] { return std::string(r.reason != nullptr ? r.reason : ""); };
  switch (r.op) {
    case Op::park: {
      if (aux == 0) {
        TraceEvent& block = event(EventKind::block);
        block.reason = reason();
        block.other = r.other;
        name_object(block);
      }
      TraceEvent& sw = event(EventKind::switch_);
      sw.reason = reason();
      return;
    }
    case Op::resume: {
      static constexpr const char* whys[] = {"start", "resume", "timeout", "kill"};
      const auto why = static_cast<Resume>(aux);
      if (why == Resume::wake || why == Resume::timeout) {
        TraceEvent& wake = event(EventKind::wake);
        wake.reason = why == Resume::timeout ? "timeout" : reason();
        name_object(wake);
      }
      TraceEvent& sw = event(EventKind::switch_);
      sw.greenlet = 0;
      sw.other = r.greenlet;
      sw.reason = whys[aux];
      return;
    }
    case Op::event:
      break;
  }
  TraceEvent& e = event(r.kind);
  switch (r.kind) {
    case EventKind::spawn: {
      e.other = r.other;
      if (text != nullptr) {
        e.name = *text;
        names[r.greenlet] = *text;
      }
      return;
    }
    case EventKind::choice:
      e.n = static_cast<std::uint32_t>(r.other);
      e.answer = aux;
      e.reason = reason();
      return;
    case EventKind::exit:
      e.reason = text != nullptr ? *text : reason();
      return;
    case EventKind::fault:
      e.reason = reason();
      if (text != nullptr) e.name = *text;
      return;
    default:
      e.other = r.other;
      e.reason = reason();
      return;
  }
}

Trace Tracer::trace() const {
  Trace out;
  out.hub = hub_.hub_name();
  out.test = test_;
  out.events.reserve(size_ * 2);
  Names names;  // greenlet names, gathered from the spawn records as they come
  for (std::size_t i = 0; i < size_; ++i) {
    expand(chunks_[i / chunk_records][i % chunk_records], out, names);
  }
  return out;
}

}  // namespace tendril::trace
