// SPDX-License-Identifier: Apache-2.0
// linkable.cpp: gevent's AbstractLinkable notification order, without allocation per wait.
#include "tendril/sched/linkable.hpp"

#include <cstdio>
#include <memory>

#include "tendril/sched/assert.hpp"
#include "tendril/sched/errors.hpp"

namespace tendril {
namespace detail {

namespace {

// A rawlink is a WaitNode with no greenlet; it carries its callback and lives on the heap.
struct RawLinkNode : WaitNode {
  LinkId id = 0;
  std::function<void()> fn;
};

bool is_rawlink(const WaitNode& n) { return n.token.greenlet == nullptr; }

}  // namespace

void WaitList::orphan_all() noexcept {
  while (WaitNode* n = pop_front()) {
    if (is_rawlink(*n)) delete static_cast<RawLinkNode*>(n);
  }
}

void WaitList::splice_back(WaitList& other) noexcept {
  while (WaitNode* n = other.pop_front()) push_back(*n);
}

std::optional<std::int64_t> deadline_from(Hub& hub, std::optional<Duration> timeout,
                                          const char* api) {
  if (!timeout) return std::nullopt;
  if (*timeout < Duration::zero()) {
    throw UsageError(std::string(api) + ": negative timeout (" + std::to_string(timeout->count()) +
                     " ns)");
  }
  const std::int64_t now = hub.now_ns();
  const std::int64_t max = INT64_MAX;
  return timeout->count() > max - now ? max : now + timeout->count();
}

}  // namespace detail

Linkable::Linkable(const char* kind, bool notify_all)
    : kind_(kind),
      notify_all_(notify_all),
      id_(current_hub_or_null() ? current_hub_or_null()->next_object_id() : 0) {}

Linkable::~Linkable() {
  if (anchor_) anchor_->owner = nullptr;
  // Waiters still blocked here stay blocked (until killed); forget them so that nothing touches
  // this object again. A deadlock report then names their wait but not this object.
  for (detail::WaitList* list : {&links_, &arrived_}) {
    for (detail::WaitNode* n = list->front(); n != nullptr; n = n->next) {
      if (n->token.greenlet) n->token.greenlet->forget_wait_object(this);
    }
    free_rawlinks(*list);
    list->orphan_all();
  }
}

void Linkable::free_rawlinks(detail::WaitList& list) noexcept {
  detail::WaitNode* n = list.front();
  while (n != nullptr) {
    detail::WaitNode* next = n->next;
    if (detail::is_rawlink(*n)) {
      list.remove(*n);
      delete static_cast<detail::RawLinkNode*>(n);
    }
    n = next;
  }
}

std::string Linkable::describe() const {
  std::string out = std::string(kind_) + "#" + std::to_string(id_);
  if (!name_.empty()) out += " '" + name_ + "'";
  return out;
}

LinkId Linkable::rawlink(std::function<void()> callback) {
  auto node = std::make_unique<detail::RawLinkNode>();
  const LinkId id = next_rawlink_id_++;
  node->id = id;
  node->fn = std::move(callback);
  links_.push_back(*node.release());
  check_and_notify();
  return id;
}

void Linkable::unlink(LinkId id) noexcept {
  for (detail::WaitList* list : {&links_, &arrived_}) {
    for (detail::WaitNode* n = list->front(); n != nullptr; n = n->next) {
      if (detail::is_rawlink(*n) && static_cast<detail::RawLinkNode*>(n)->id == id) {
        list->remove(*n);
        delete static_cast<detail::RawLinkNode*>(n);
        if (notifier_ == Notifier::queued) left();
        return;
      }
    }
  }
}

bool Linkable::notify_idle() const {
  if (!arrived_.empty()) return false;
  return links_.empty() || (!notify_all_ && !ready());
}

void Linkable::note_stale() noexcept {
  if (Hub* hub = current_hub_or_null()) hub->note_stale_possible();
}

void Linkable::left() noexcept {
  if (!links_.empty() || !arrived_.empty()) return;
  // The queued callback keeps the old anchor alive and finds no owner: a no-op on LibevHub, and
  // SimHub does not offer it as a choice (Hub::is_stale).
  anchor_->owner = nullptr;
  anchor_ = Ref<detail::Anchor>();
  notifier_ = Notifier::idle;
  note_stale();
}

void Linkable::check_and_notify() {
  if (notifier_ != Notifier::idle || links_.empty() || !ready()) return;
  Hub& hub = current_hub("tendril::Linkable");
  if (!anchor_) {
    anchor_ = Ref<detail::Anchor>(new detail::Anchor);
    anchor_->owner = this;
  }
  notifier_ = Notifier::queued;
  anchor_->add_ref();  // held by the queued callback
  hub.schedule(Callback{&detail::linkable_notify_cb, anchor_.get(), 0});
}

WaitToken Linkable::notify_step_other(std::uint64_t& phase_in_callback, bool on_hub) {
  // Kept in a local, written back on the way out (never touching this object after a rawlink,
  // which may have destroyed it).
  std::uint64_t phase = phase_in_callback;
  WaitToken token;
  for (;;) {
    if (phase == notify_fresh) {
      notifier_ = Notifier::running;
      phase = notify_links_start;
    }
    if (phase == notify_links_start) {
      final_ = links_.back();
      phase = notify_links;
    }
    if (phase == notify_arrived_start) {
      if (arrived_.empty()) {
        phase = notify_end;
      } else {
        final_ = arrived_.back();
        phase = notify_arrived;
      }
    }
    if (phase == notify_links || phase == notify_arrived) {
      detail::WaitList& list = phase == notify_links ? links_ : arrived_;
      const std::uint64_t next = phase == notify_links ? notify_arrived_start : notify_end;
      detail::WaitNode* const n = list.front();
      if (n == nullptr || (!notify_all_ && !ready())) {
        phase = next;
        continue;
      }
      const bool rawlink = n->token.greenlet == nullptr;
      if (rawlink && !on_hub) break;  // the hub's stack runs it
      if (n == final_) phase = next;
      list.pop_front();
      if (rawlink) {
        phase_in_callback = phase;
        run_rawlink(n);
        return token;
      }
      token = n->token;
      break;
    }
    if (phase == notify_end) {
      // What is left goes back to links_; a notification is queued again if one is due, which
      // may allocate: the hub's stack does that.
      if (!links_.empty() || !arrived_.empty()) {
        if (ready()) {
          if (!on_hub) break;
          links_.splice_back(arrived_);
          notifier_ = Notifier::idle;
          phase_in_callback = notify_over;
          check_and_notify();
          return token;
        }
        links_.splice_back(arrived_);
      }
      notifier_ = Notifier::idle;
      phase = notify_over;
    }
    break;
  }
  phase_in_callback = phase;
  return token;
}

void Linkable::run_rawlink(detail::WaitNode* n) noexcept {
  std::unique_ptr<detail::RawLinkNode> link(static_cast<detail::RawLinkNode*>(n));
  try {
    link->fn();
  } catch (...) {
    std::fprintf(stderr, "tendril: a rawlink callback on %s threw %s\n", describe().c_str(),
                 describe_exception(std::current_exception()).c_str());
  }
}

namespace detail {

// The notification on the hub's stack: each wake_now() returns when the greenlet it woke blocks.
// A woken greenlet or a rawlink may destroy the object: the anchor says so. The queued callback's
// reference to the anchor is released on every way out.
void linkable_notify_cb(Callback& cb, bool run) {
  auto* const anchor = static_cast<Anchor*>(cb.obj);
  struct Release {
    Anchor* anchor;
    ~Release() { anchor->release(); }
  } release{anchor};
  auto* const self = static_cast<Linkable*>(anchor->owner);
  if (self == nullptr) return;
  if (!run) {
    self->notifier_ = Linkable::Notifier::idle;
    return;
  }
  for (;;) {
    const WaitToken token = self->notify_step(cb.arg, true);
    if (token.greenlet != nullptr) Hub::wake_now(token);
    if (anchor->owner == nullptr || cb.arg == Linkable::notify_over) return;
  }
}

}  // namespace detail

void Linkable::join_pending_notification(const char* api, const char* reason) {
  Hub& hub = current_hub(api);
  detail::WaitNode node;
  node.token = hub.begin_wait(api);
  arrived_.push_back(node);
  struct Unlink {
    Linkable& self;
    detail::WaitNode& node;
    ~Unlink() {
      if (node.list != nullptr) {  // killed before its turn (else woken, or orphaned: see above)
        node.unlink();
        if (self.notifier_ == Notifier::queued) self.left();
      }
    }
  } unlink{*this, node};
  hub.park(node.token, reason, this);
}

}  // namespace tendril
