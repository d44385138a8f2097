// SPDX-License-Identifier: Apache-2.0
// pool.cpp: Group and Pool (gevent.pool), with members in creation order.
#include "tendril/sched/pool.hpp"

namespace tendril {

Group::Group(std::string name) : name_(std::move(name)) {
  empty_.set_name(name_.empty() ? "group empty" : name_ + " empty");
  empty_.set();
}

Group::~Group() {
  // Members go on running without us: drop our removal links so they never call into a dead
  // group; stop the imap feeders, which would spawn into it.
  for (auto& [id, m] : members_) m.greenlet->unlink(m.link);
  for (auto& run : maps_) {
    run.state->group = nullptr;
    if (!run.feeder->dead()) run.feeder->kill(nullptr, false);
  }
}

void Group::add_member(const Ref<Greenlet>& g, bool, std::optional<Duration>) {
  if (!g || g->dead() || contains(*g)) return;
  const std::uint64_t id = g->id();
  const LinkId link = g->rawlink([this, id](Greenlet&) { remove_member(id); });
  members_.emplace(id, Member{g, link});
  empty_.clear();
}

void Group::remove_member(std::uint64_t id) {
  auto it = members_.find(id);
  if (it == members_.end()) return;
  members_.erase(it);
  if (members_.empty()) empty_.set();
  on_discard();
}

void Group::discard(const Ref<Greenlet>& g) {
  if (!g) return;
  auto it = members_.find(g->id());
  if (it == members_.end()) return;
  g->unlink(it->second.link);
  remove_member(g->id());
}

std::vector<Ref<Greenlet>> Group::greenlets() const {
  std::vector<Ref<Greenlet>> out;
  out.reserve(members_.size());
  for (const auto& [id, m] : members_) out.push_back(m.greenlet);
  return out;
}

bool Group::join(std::optional<Duration> timeout, bool raise_error) {
  const std::vector<Ref<Greenlet>> watched =
      raise_error ? greenlets() : std::vector<Ref<Greenlet>>{};
  const bool empty = members_.empty() || empty_.wait(timeout);
  for (const auto& g : watched) {
    if (g->exception()) std::rethrow_exception(g->exception());
  }
  return empty;
}

void Group::kill(std::exception_ptr exception, bool block, std::optional<Duration> timeout) {
  // One kill(block=false) per member, in creation order, as gevent's Group.kill.
  if (!exception) exception = std::make_exception_ptr(GreenletExit());
  for (const auto& g : greenlets()) g->kill(exception, false);
  if (block && !members_.empty()) empty_.wait(timeout);
}

void Group::killone(const Ref<Greenlet>& g, std::exception_ptr exception, bool block,
                    std::optional<Duration> timeout) {
  if (!g || !contains(*g)) return;
  g->kill(std::move(exception), false);
  if (block) g->join(timeout);
}

Pool::Pool(std::int64_t size, std::string name)
    : Group(std::move(name)),
      size_(size > 0 ? static_cast<std::size_t>(size) : 0),
      slots_(size > 0 ? size : 0) {
  if (size < 1) {
    throw UsageError("tendril::Pool: size must be at least 1 (got " + std::to_string(size) + ")");
  }
  slots_.set_name(this->name().empty() ? "pool slots" : this->name() + " slots");
}

std::size_t Pool::free_count() const noexcept { return size_ > size() ? size_ - size() : 0; }

std::size_t Pool::wait_available(std::optional<Duration> timeout) {
  slots_.wait(timeout);
  return free_count();
}

void Pool::add_member(const Ref<Greenlet>& g, bool blocking, std::optional<Duration> timeout) {
  if (!g || g->dead() || contains(*g)) return;
  if (!slots_.acquire(blocking, timeout)) {
    throw Full("tendril: " + std::string(name().empty() ? "pool" : "pool '" + name() + "'") +
               " is full (" + std::to_string(size_) + " members)");
  }
  try {
    Group::add_member(g, blocking, timeout);
  } catch (...) {
    slots_.release();
    throw;
  }
}

}  // namespace tendril
