// SPDX-License-Identifier: Apache-2.0
// queue.cpp: the non-template part of the queues.
#include "tendril/sched/queue.hpp"

namespace tendril::detail {

QueueBase::QueueBase(const char* kind, std::string name)
    : kind_(kind),
      id_(current_hub_or_null() ? current_hub_or_null()->next_object_id() : 0),
      name_(std::move(name)),
      anchor_(new Anchor) {
  anchor_->owner = this;
}

QueueBase::~QueueBase() {
  anchor_->owner = nullptr;
  // Waiters still blocked here stay blocked until killed; forget them (see Linkable).
  for (WaitList* list : {&getters_, &putters_}) {
    for (WaitNode* n = list->front(); n != nullptr; n = n->next) {
      n->token.greenlet->forget_wait_object(this);
    }
    list->orphan_all();
  }
}

std::string QueueBase::describe() const {
  std::string out = std::string(kind_) + "#" + std::to_string(id_);
  if (!name_.empty()) out += " '" + name_ + "'";
  return out;
}

void QueueBase::schedule_unlock() {
  if (unlock_pending_) return;
  unlock_pending_ = true;
  anchor_->add_ref();  // held by the queued callback
  current_hub("tendril::Queue").schedule(Callback{&QueueBase::unlock_cb, anchor_.get(), 0});
}

void QueueBase::note_stale() noexcept {
  if (Hub* hub = current_hub_or_null()) hub->note_stale_possible();
}

void QueueBase::unlock_cb(Callback& cb, bool run) {
  auto* anchor = static_cast<Anchor*>(cb.obj);
  auto* self = static_cast<QueueBase*>(anchor->owner);
  if (self == nullptr || !run) {
    if (self != nullptr) self->unlock_pending_ = false;
    anchor->release();
    return;
  }
  // Cleared before running, as gevent's callback objects are: an unlock scheduled while this
  // one runs queues another pass.
  self->unlock_pending_ = false;
  // A tail call: unlock() switches into the waiters it serves, and a frame left here would cost
  // a mispredicted return after each switch. unlock() releases the callback's reference.
  self->unlock(anchor);
}

}  // namespace tendril::detail
