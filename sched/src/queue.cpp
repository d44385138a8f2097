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

void QueueBase::note_stale() noexcept {
  if (Hub* hub = current_hub_or_null()) hub->note_stale_possible();
}

// A tail call: the pass switches into the waiters it serves, and a frame left here would cost a
// mispredicted return after each switch.
void queue_unlock_cb(Callback& cb, bool run) { QueueBase::run_pass(cb, run); }

void QueueBase::run_pass(Callback& cb, bool run) {
  auto* anchor = static_cast<Anchor*>(cb.obj);
  // The pass is pending from schedule_unlock() until it is over, as gevent's callback object is
  // true while pending or running: a put or get during the pass queues no other pass (this one
  // goes on until a round serves nobody). On every way out the pass is over, and the queued
  // callback's reference is released.
  struct End {
    Anchor* anchor;
    ~End() {
      if (anchor->owner != nullptr) static_cast<QueueBase*>(anchor->owner)->unlock_pending_ = false;
      anchor->release();
    }
  } end{anchor};
  auto* self = static_cast<QueueBase*>(anchor->owner);
  if (self == nullptr || !run) return;
  if (cb.arg == pass_fresh) cb.arg = pass_round;
  // The pass on the hub's stack: each wake_now() returns when the greenlet it woke blocks. A
  // woken greenlet may destroy the queue: the anchor says so.
  for (;;) {
    const WaitToken token = self->unlock_step(cb.arg, true);
    if (token.greenlet == nullptr) return;
    Hub::wake_now(token);
    if (anchor->owner == nullptr) return;
  }
}

}  // namespace tendril::detail
