// SPDX-License-Identifier: Apache-2.0
// wait.cpp: iwait/wait over greenlets and Linkables, and waiting for an idle hub.
#include "tendril/sched/wait.hpp"

#include <algorithm>

namespace tendril {

IWait::IWait(std::vector<WaitObject> objects, std::optional<Duration> timeout,
             std::optional<std::size_t> count)
    : objects_(std::move(objects)), state_(new State) {
  Hub& hub = current_hub("tendril::iwait");
  deadline_ = detail::deadline_from(hub, timeout, "tendril::iwait");
  remaining_ = count ? std::min(*count, objects_.size()) : objects_.size();
  links_.reserve(objects_.size());
  for (std::size_t i = 0; i < objects_.size(); ++i) {
    // Linking a ready object queues its notification at once, so ready objects come out first,
    // in the order given (gevent).
    Ref<State> state = state_;
    if (Greenlet* g = objects_[i].greenlet()) {
      links_.push_back(g->rawlink([state, i](Greenlet&) { state->ready.put(i); }));
    } else {
      links_.push_back(objects_[i].linkable()->rawlink([state, i] { state->ready.put(i); }));
    }
  }
}

IWait::~IWait() {
  for (std::size_t i = 0; i < objects_.size(); ++i) {
    if (Greenlet* g = objects_[i].greenlet()) {
      g->unlink(links_[i]);
    } else {
      objects_[i].linkable()->unlink(links_[i]);
    }
  }
}

std::optional<WaitObject> IWait::next() {
  if (remaining_ == 0) return std::nullopt;
  std::optional<Duration> left;
  if (deadline_) {
    Hub& hub = current_hub("tendril::IWait::next");
    left = Duration(std::max<std::int64_t>(0, *deadline_ - hub.now_ns()));
  }
  try {
    const std::size_t i = state_->ready.get(true, left);
    --remaining_;
    return objects_[i];
  } catch (const Empty&) {
    remaining_ = 0;  // timed out: iteration ends, as gevent's iwait
    return std::nullopt;
  }
}

std::vector<WaitObject> wait(std::vector<WaitObject> objects, std::optional<Duration> timeout,
                             std::optional<std::size_t> count) {
  std::vector<WaitObject> done;
  IWait it(std::move(objects), timeout, count);
  while (auto obj = it.next()) done.push_back(*obj);
  return done;
}

void wait() { current_hub("tendril::wait").wait_until_idle(); }

}  // namespace tendril
