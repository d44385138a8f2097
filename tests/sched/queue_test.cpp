// SPDX-License-Identifier: Apache-2.0
// The queues, pinned to gevent 22.10's observable order (tests/gevent_twins/queue_semantics.py
// prints gevent's side of each test).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <utility>
#include <vector>

#include "tendril/sim.hpp"

using namespace std::chrono_literals;
using tendril::Ref;
using tendril::SimHub;
using Log = std::vector<std::string>;

namespace {

// py() prints items as Python prints a list, so logs read as the gevent twin's.
std::string py(const std::vector<int>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    out += (i ? ", " : "") + std::to_string(items[i]);
  }
  return out + "]";
}
std::string py(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", '" : "'") + items[i] + "'";
  return out + "]";
}

// drain() gets every queued item without blocking.
template <class Q>
std::vector<int> drain(Q& q) {
  std::vector<int> out;
  while (!q.empty()) out.push_back(q.get());
  return out;
}

}  // namespace

// q1: blocked getters are served in the order they came; put() never switches.
TEST(Queue, GettersServedInOrderAndPutNeverSwitches) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Queue<std::string> q;
    std::vector<Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 3; ++i) {
      gs.push_back(
          tendril::spawn([&, i] { log.push_back("g" + std::to_string(i) + " " + q.get()); }));
    }
    tendril::sleep(0s);
    for (const char* item : {"a", "b", "c"}) q.put(item);
    log.push_back("after puts");
    tendril::joinall(gs);
  });
  EXPECT_EQ(log, (Log{"after puts", "g0 a", "g1 b", "g2 c"}));
}

// q2: blocked putters are served in order; a freed slot is filled by the unlock callback, which
// appends the putter's item and then resumes the putter.
TEST(Queue, BlockedPuttersServedInOrder) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Queue<std::string> q(1);
    q.put("first");
    std::vector<Ref<tendril::Greenlet>> gs;
    for (int i = 0; i < 2; ++i) {
      gs.push_back(tendril::spawn([&, i] {
        q.put("p" + std::to_string(i));
        log.push_back("p" + std::to_string(i) + " returned");
      }));
    }
    tendril::sleep(0s);
    log.push_back("got " + q.get());
    log.push_back("size " + std::to_string(q.qsize()));
    tendril::sleep(0s);
    log.push_back("got " + q.get());
    tendril::sleep(0s);
    log.push_back("got " + q.get());
    tendril::joinall(gs);
  });
  EXPECT_EQ(log, (Log{"got first", "size 0", "p0 returned", "got p0", "p1 returned", "got p1"}));
}

// q3: barging: a putter that calls get() before yielding takes its own item.
TEST(Queue, PutterThatGetsBeforeYieldingTakesItsOwnItem) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Queue<std::string> q;
    auto g = tendril::spawn([&] { log.push_back("getter " + q.get()); });
    tendril::sleep(0s);
    q.put("mine");
    log.push_back("main " + q.get());
    q.put("yours");
    g->join();
  });
  EXPECT_EQ(log, (Log{"main mine", "getter yours"}));
}

// q4: put_nowait/get_nowait throw Full/Empty; put/get timeouts throw Full/Empty at the deadline.
TEST(Queue, NowaitAndTimeouts) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Queue<int> q(1);
    try {
      q.get_nowait();
    } catch (const tendril::Empty&) {
      log.push_back("Empty");
    }
    q.put_nowait(1);
    try {
      q.put_nowait(2);
    } catch (const tendril::Full&) {
      log.push_back("Full");
    }
    try {
      q.put(3, true, 500ms);
    } catch (const tendril::Full&) {
      log.push_back("Full after timeout");
    }
    EXPECT_EQ(tendril::now(), 500ms);
    q.get();
    try {
      q.get(true, 250ms);
    } catch (const tendril::Empty&) {
      log.push_back("Empty after timeout");
    }
    EXPECT_EQ(tendril::now(), 750ms);
    EXPECT_EQ(q.putters() + q.getters(), 0u);
  });
  EXPECT_EQ(log, (Log{"Empty", "Full", "Full after timeout", "Empty after timeout"}));
}

// q5: LIFO and priority queues pick the item when the getter wakes, not when it was put.
TEST(Queue, LifoAndPriorityPickWhenTheGetterWakes) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::LifoQueue<int> lifo;
    auto g = tendril::spawn([&] { log.push_back("LifoQueue " + std::to_string(lifo.get())); });
    tendril::sleep(0s);
    for (int v : {2, 3, 1}) lifo.put(v);
    g->join();
    const int l1 = lifo.get();
    const int l2 = lifo.get();
    log.push_back("then " + std::to_string(l1) + " " + std::to_string(l2));
    tendril::PriorityQueue<int> prio;
    g = tendril::spawn([&] { log.push_back("PriorityQueue " + std::to_string(prio.get())); });
    tendril::sleep(0s);
    for (int v : {2, 3, 1}) prio.put(v);
    g->join();
    const int p1 = prio.get();
    const int p2 = prio.get();
    log.push_back("then " + std::to_string(p1) + " " + std::to_string(p2));
  });
  EXPECT_EQ(log, (Log{"LifoQueue 1", "then 3 2", "PriorityQueue 1", "then 2 3"}));
}

// q6: JoinableQueue: join() returns when every item is done; an extra task_done() is an error.
TEST(Queue, JoinableQueueTaskDone) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::JoinableQueue<int> q;
    auto worker = tendril::spawn([&] {
      for (;;) {
        int item = q.get();
        tendril::sleep(100ms);
        log.push_back("done " + std::to_string(item));
        q.task_done();
      }
    });
    for (int i = 0; i < 3; ++i) q.put(i);
    EXPECT_TRUE(q.join());
    log.push_back("joined");
    EXPECT_EQ(tendril::now(), 300ms);
    worker->kill();
    try {
      q.task_done();
    } catch (const tendril::UsageError&) {
      log.push_back("ValueError");
    }
  });
  EXPECT_EQ(log, (Log{"done 0", "done 1", "done 2", "joined", "ValueError"}));
}

// q7: a Channel's put blocks until a getter takes the item; put_nowait succeeds only with a
// getter already waiting.
TEST(Queue, ChannelPutBlocksUntilTaken) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Channel<std::string> ch;
    auto p = tendril::spawn([&] {
      ch.put("x");
      log.push_back("put returned");
    });
    tendril::sleep(0s);
    log.push_back(std::string("putter blocked ") + (p->dead() ? "False" : "True"));
    log.push_back("got " + ch.get());
    p->join();
    try {
      ch.put_nowait("y");
    } catch (const tendril::Full&) {
      log.push_back("Full");
    }
    auto g = tendril::spawn([&] { log.push_back("getter got " + ch.get()); });
    tendril::sleep(0s);
    ch.put_nowait("z");
    log.push_back("put_nowait returned");
    g->join();
  });
  EXPECT_EQ(log, (Log{"putter blocked True", "got x", "put returned", "Full", "getter got z",
                      "put_nowait returned"}));
}

// q8: a getter killed while waiting takes no item: the next getter gets it.
TEST(Queue, KilledGetterLosesNoItem) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Queue<std::string> q;
    auto g1 = tendril::spawn([&] { q.get(); });
    auto g2 = tendril::spawn([&] { log.push_back("g2 " + q.get()); });
    tendril::sleep(0s);
    g1->kill();
    q.put("item");
    g2->join();
    log.push_back("size " + std::to_string(q.qsize()));
  });
  EXPECT_EQ(log, (Log{"g2 item", "size 0"}));
}

// A putter killed while blocked leaves its item out of the queue and the queue consistent.
TEST(Queue, KilledPutterLeavesQueueConsistent) {
  SimHub hub;
  tendril::run(hub, [&] {
    tendril::Queue<int> q(1);
    q.put(1);
    auto p = tendril::spawn([&] { q.put(2); });
    tendril::sleep(0s);
    EXPECT_EQ(q.putters(), 1u);
    p->kill();
    EXPECT_EQ(q.putters(), 0u);
    EXPECT_EQ(q.get(), 1);
    EXPECT_TRUE(q.empty());
  });
}

// peek() returns the next item without removing it, blocking while empty.
TEST(Queue, PeekDoesNotRemove) {
  SimHub hub;
  tendril::run(hub, [&] {
    tendril::Queue<int> q;
    auto g = tendril::spawn([&] { return q.peek(); });
    tendril::sleep(0s);
    q.put(7);
    EXPECT_EQ(g->get(), 7);
    EXPECT_EQ(q.qsize(), 1u);
    EXPECT_EQ(q.peek(), 7);
  });
}

// Move-only items pass through queues and channels.
TEST(Queue, MoveOnlyItems) {
  SimHub hub;
  tendril::run(hub, [&] {
    tendril::Queue<std::unique_ptr<int>> q(1);
    q.put(std::make_unique<int>(1));
    auto p = tendril::spawn([&] { q.put(std::make_unique<int>(2)); });
    tendril::sleep(0s);
    EXPECT_EQ(*q.get(), 1);
    EXPECT_EQ(*q.get(), 2);
    tendril::Channel<std::unique_ptr<int>> ch;
    auto c = tendril::spawn([&] { ch.put(std::make_unique<int>(3)); });
    EXPECT_EQ(*ch.get(), 3);
    c->join();
  });
}

// Negative sizes and timeouts are UsageErrors; a queue deadlock names the queue.
TEST(Queue, BadInputAndDeadlockReport) {
  SimHub hub;
  tendril::run(hub, [&] {
    EXPECT_THROW(tendril::Queue<int>(-1), tendril::UsageError);
    tendril::Queue<int> q;
    EXPECT_THROW(q.get(true, -1s), tendril::UsageError);
  });
  SimHub fresh;
  try {
    tendril::run(fresh, [] {
      tendril::Queue<int> inbox(0, "inbox");
      inbox.get();
    });
    ADD_FAILURE() << "no Deadlock";
  } catch (const tendril::Deadlock& e) {
    EXPECT_NE(std::string(e.what()).find("blocked in Queue.get on Queue#1 'inbox'"),
              std::string::npos)
        << e.what();
  }
}

// A getter woken by the unlock pass destroys the queue while another getter still waits: the
// pass stops without touching the dead queue (ASan checks it), the item put for the second
// getter goes with the queue, and the second getter stays blocked until it is killed.
TEST(Queue, GetterThatDestroysTheQueueEndsTheUnlockPass) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto q = std::make_unique<tendril::Queue<std::string>>(0, "short-lived");
    auto first = tendril::spawn([&] {
      log.push_back("first got " + q->get());
      q.reset();
      log.push_back("first destroyed the queue");
    });
    auto second = tendril::spawn([&] {
      try {
        log.push_back("second got " + q->get());
      } catch (const tendril::GreenletExit&) {
        log.push_back("second killed");
        throw;
      }
    });
    tendril::sleep(0s);
    q->put("a");
    q->put("b");
    tendril::sleep(0s);
    log.push_back("main after the pass");
    EXPECT_TRUE(first->dead());
    EXPECT_FALSE(second->dead());
    second->kill();
  });
  EXPECT_EQ(log, (Log{"first got a", "first destroyed the queue", "main after the pass",
                      "second killed"}));
}

// A put while the queue's unlock pass runs queues no other pass: the running one serves it (its
// next round sees the item), as gevent's callback object stays true while it runs. A second pass
// queued then would run ahead of the one main's later put queues, and serve g3 before g1's
// sleep(0) returns.
TEST(Queue, APutDuringThePassQueuesNoOtherPass) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Queue<std::string> q;
    auto g1 = tendril::spawn([&] {
      log.push_back("g1 got " + q.get());
      q.put("b");
      log.push_back("g1 put b");
      tendril::sleep(0s);
      log.push_back("g1 back");
    });
    auto g2 = tendril::spawn([&] { log.push_back("g2 got " + q.get()); });
    auto g3 = tendril::spawn([&] { log.push_back("g3 got " + q.get()); });
    tendril::sleep(0s);
    q.put("a");
    tendril::sleep(0s);
    q.put("c");
    log.push_back("main put c");
    tendril::joinall({g1, g2, g3});
  });
  EXPECT_EQ(log, (Log{"g1 got a", "g1 put b", "g2 got b", "main put c", "g1 back", "g3 got c"}));
}

// A Channel reads like an always-empty, always-full queue (gevent's qsize() 0, empty() and
// full() True), even while a putter waits on it.
TEST(Queue, ChannelSizeIsAlwaysZero) {
  tendril::SimHub hub;
  std::vector<std::string> log;
  tendril::run(hub, [&] {
    tendril::Channel<int> ch;
    auto say = [&] {
      log.push_back(std::to_string(ch.qsize()) + (ch.empty() ? " empty" : " not empty") +
                    (ch.full() ? " full" : " not full") + " balance " +
                    std::to_string(ch.balance()));
    };
    say();
    auto putter = tendril::spawn([&] { ch.put(1); });
    tendril::sleep(0s);
    say();
    log.push_back("got " + std::to_string(ch.get()));
    putter->join();
  });
  EXPECT_EQ(
      log, (std::vector<std::string>{"0 empty full balance 0", "0 empty full balance 1", "got 1"}));
}

// Queue(maxsize, items) with more items than maxsize, per class: all items are queued (Lifo:
// last first; Priority: heapified), the queue is full and put_nowait() throws Full.
TEST(Queue, ItemsBeyondMaxsizeAreAllQueued) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto check = [&](auto& q, const char* kind) {
      log.push_back(std::string(kind) + " qsize " + std::to_string(q.qsize()) + " full " +
                    (q.full() ? "True" : "False") + " maxsize " + std::to_string(q.maxsize()));
      try {
        q.put_nowait(9);
        ADD_FAILURE() << kind << ": no Full";
      } catch (const tendril::Full& e) {
        EXPECT_EQ(std::string(e.what()), "tendril: " + q.describe() + " is full");
        log.push_back(" put_nowait Full");
      }
      log.push_back(" got " + py(drain(q)));
    };
    tendril::Queue<int> fifo(2, {3, 1, 4, 1, 5});
    check(fifo, "Queue");
    tendril::LifoQueue<int> lifo(2, {3, 1, 4, 1, 5});
    check(lifo, "LifoQueue");
    tendril::PriorityQueue<int> prio(2, {3, 1, 4, 1, 5});
    check(prio, "PriorityQueue");
    tendril::JoinableQueue<int> joinable(2, {3, 1, 4, 1, 5});
    check(joinable, "JoinableQueue");
  });
  EXPECT_EQ(
      log, (Log{"Queue qsize 5 full True maxsize 2", " put_nowait Full", " got [3, 1, 4, 1, 5]",
                "LifoQueue qsize 5 full True maxsize 2", " put_nowait Full", " got [5, 1, 4, 1, 3]",
                "PriorityQueue qsize 5 full True maxsize 2", " put_nowait Full",
                " got [1, 1, 3, 4, 5]", "JoinableQueue qsize 5 full True maxsize 2",
                " put_nowait Full", " got [3, 1, 4, 1, 5]"}));
}

// A queue started over-full keeps a putter blocked until gets bring it below maxsize.
TEST(Queue, OverfullQueueBlocksPutterUntilBelowMaxsize) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Queue<int> q(2, {1, 2, 3});
    auto p = tendril::spawn([&] {
      q.put(4);
      log.push_back("put 4 returned");
    });
    tendril::sleep(0s);
    log.push_back("got " + std::to_string(q.get()));
    tendril::sleep(0s);
    log.push_back("qsize " + std::to_string(q.qsize()));
    log.push_back("got " + std::to_string(q.get()));
    tendril::sleep(0s);
    log.push_back("qsize " + std::to_string(q.qsize()));
    p->join();
    EXPECT_EQ(q.snapshot(), (std::vector<int>{3, 4}));
  });
  EXPECT_EQ(log, (Log{"got 1", "qsize 2", "got 2", "put 4 returned", "qsize 2"}));
}

// Braced arguments pick the constructor they read as: a lone braced value is maxsize, a braced
// list in second place is items (never the name), a string in second place is the name.
TEST(Queue, BracedArgumentsPickTheRightConstructor) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
#if defined(__clang__)  // the braces are the point: a user may write them
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wbraced-scalar-init"
#endif
    tendril::Queue<int> lone({5});
#if defined(__clang__)
#pragma clang diagnostic pop
#endif
    log.push_back("({5}) maxsize " + std::to_string(lone.maxsize()) + " qsize " +
                  std::to_string(lone.qsize()));
    tendril::Queue<int> braced{5};
    log.push_back("{5} maxsize " + std::to_string(braced.maxsize()) + " qsize " +
                  std::to_string(braced.qsize()));
    tendril::Queue<int> one(0, {5});
    log.push_back("(0, {5}) got " + py(drain(one)));
    tendril::Queue<std::string> strings(0, {"a", "b"});
    EXPECT_EQ(strings.name(), "");
    log.push_back("(0, {a, b}) got " + py(strings.snapshot()));
    tendril::Queue<std::string> named(0, {"a"}, "named");
    EXPECT_EQ(named.name(), "named");
    EXPECT_EQ(named.qsize(), 1u);
    tendril::Queue<std::string> only_name(3, "inbox");
    EXPECT_EQ(only_name.name(), "inbox");
    EXPECT_EQ(only_name.qsize(), 0u);
    const std::vector<int> v{7, 8};
    tendril::Queue<int> from_vector(0, v);
    log.push_back("(0, vector) got " + py(drain(from_vector)));
    tendril::Queue<std::unique_ptr<int>> move_only(0, [] {
      std::vector<std::unique_ptr<int>> items;
      items.push_back(std::make_unique<int>(11));
      return items;
    }());
    log.push_back("move-only got " + std::to_string(*move_only.get()));
  });
  EXPECT_EQ(log, (Log{"({5}) maxsize 5 qsize 0", "{5} maxsize 5 qsize 0", "(0, {5}) got [5]",
                      "(0, {a, b}) got ['a', 'b']", "(0, vector) got [7, 8]", "move-only got 11"}));
}

// JoinableQueue(maxsize, items): each item is an unfinished task (gevent's default), or
// unfinished_tasks says how many; join() waits for them all; one task_done() too many throws.
TEST(Queue, JoinableQueueItemsAreUnfinishedTasks) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::JoinableQueue<int> q(0, {1, 2, 3});
    log.push_back("unfinished " + std::to_string(q.unfinished_tasks()) + " join " +
                  (q.join(0s) ? "True" : "False"));
    auto worker = tendril::spawn([&] {
      for (;;) {
        const int item = q.get();
        log.push_back("done " + std::to_string(item));
        q.task_done();
      }
    });
    log.push_back(std::string("joined ") + (q.join() ? "True" : "False"));
    worker->kill();
    tendril::JoinableQueue<int> more(0, {1, 2, 3}, 5);
    std::size_t done = 0;
    try {
      for (;;) {
        more.task_done();
        ++done;
      }
    } catch (const tendril::UsageError& e) {
      EXPECT_EQ(std::string(e.what()),
                "tendril: task_done() called more times than items were put on " + more.describe());
    }
    log.push_back("given 5: task_done ok " + std::to_string(done) + " qsize " +
                  std::to_string(more.qsize()));
    tendril::JoinableQueue<int> none(0, std::vector<int>{}, 2);
    log.push_back("no items, given 2: unfinished " + std::to_string(none.unfinished_tasks()) +
                  " join " + (none.join(0s) ? "True" : "False"));
    tendril::JoinableQueue<int> empty;
    log.push_back("default: unfinished " + std::to_string(empty.unfinished_tasks()) + " join " +
                  (empty.join(0s) ? "True" : "False"));
  });
  EXPECT_EQ(log,
            (Log{"unfinished 3 join False", "done 1", "done 2", "done 3", "joined True",
                 "given 5: task_done ok 5 qsize 3", "no items, given 2: unfinished 2 join False",
                 "default: unfinished 0 join True"}));
}

// An unfinished_tasks count below the number of items is refused (gevent takes 0 as "count the
// items" and lets a smaller count end join() with items still queued; the twin shows it).
TEST(Queue, JoinableQueueCountBelowItemsIsRefused) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    for (std::int64_t given : {0, 1, -1}) {
      try {
        tendril::JoinableQueue<int> q(0, {1, 2, 3}, given);
        ADD_FAILURE() << "no UsageError for " << given;
      } catch (const tendril::UsageError& e) {
        log.push_back(e.what());
      }
    }
    tendril::JoinableQueue<int> exact(0, {1, 2, 3}, 3);
    EXPECT_EQ(exact.unfinished_tasks(), 3u);
  });
  EXPECT_EQ(log, (Log{"tendril::JoinableQueue: unfinished_tasks must count at least the 3 items "
                      "given, got 0",
                      "tendril::JoinableQueue: unfinished_tasks must count at least the 3 items "
                      "given, got 1",
                      "tendril::JoinableQueue: unfinished_tasks must count at least the 3 items "
                      "given, got -1"}));
}

// until() is an input range, and is refused on a temporary queue (the range would dangle).
template <class Q>
concept has_until = requires {
  std::declval<Q>().until(0);
};
static_assert(std::ranges::input_range<decltype(std::declval<tendril::Queue<int>&>().until(0))>);
static_assert(has_until<tendril::Queue<int>&> && !has_until<tendril::Queue<int>>);
static_assert(has_until<tendril::Channel<int>&> && !has_until<tendril::Channel<int>>);

// until(sentinel) is gevent's `for x in q:`: it gets each item (puts never switch, so the
// consumer runs after all of them), ends at the sentinel without yielding it, and leaves the
// items put after the sentinel queued.
TEST(Queue, UntilStopsAtTheSentinel) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Queue<std::string> q;
    auto consumer = tendril::spawn([&] {
      for (const std::string& x : q.until("StopIteration")) log.push_back("got " + x);
      log.push_back("loop ended");
    });
    tendril::sleep(0s);
    for (const char* item : {"a", "b", "StopIteration", "c"}) {
      q.put(item);
      log.push_back(std::string("put ") + item);
    }
    log.push_back("puts done");
    consumer->join();
    log.push_back("left " + py(q.snapshot()));
  });
  EXPECT_EQ(log, (Log{"put a", "put b", "put StopIteration", "put c", "puts done", "got a", "got b",
                      "loop ended", "left ['c']"}));
}

// A greenlet killed while until() blocks in get() leaves the loop with GreenletExit and takes
// no item: the item put afterwards stays queued.
TEST(Queue, UntilKilledWhileBlockedTakesNoItem) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Queue<std::string> q;
    auto consumer = tendril::spawn([&] {
      try {
        for (std::string x : q.until("StopIteration")) log.push_back("got " + x);
      } catch (const tendril::GreenletExit&) {
        log.push_back("killed in get");
        throw;
      }
    });
    tendril::sleep(0s);
    q.put("a");
    tendril::sleep(0s);
    consumer->kill();
    log.push_back(std::string("dead ") + (consumer->dead() ? "True" : "False"));
    q.put("b");
    log.push_back("left " + py(q.snapshot()));
  });
  EXPECT_EQ(log, (Log{"got a", "killed in get", "dead True", "left ['b']"}));
}

// until() on a Channel: each put returns after its getter ran, and the sentinel's putter
// returns after the loop ended.
TEST(Queue, ChannelUntilStopsAtTheSentinel) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    tendril::Channel<std::string> ch;
    auto consumer = tendril::spawn([&] {
      for (const std::string& x : ch.until("StopIteration")) log.push_back("got " + x);
      log.push_back("loop ended");
    });
    auto producer = tendril::spawn([&] {
      for (const char* item : {"a", "b", "StopIteration"}) {
        ch.put(item);
        log.push_back(std::string("put ") + item);
      }
    });
    tendril::joinall({consumer, producer});
    log.push_back("balance " + std::to_string(ch.balance()));
  });
  EXPECT_EQ(log, (Log{"got a", "put a", "got b", "put b", "loop ended", "put StopIteration",
                      "balance 0"}));
}

// snapshot() copies the items in get() order without taking them: gevent's q.queue for Queue,
// reversed put order for LifoQueue, lowest first for PriorityQueue (gevent's is heap order).
TEST(Queue, SnapshotIsGetOrder) {
  SimHub hub;
  Log log;
  tendril::run(hub, [&] {
    auto check = [&](auto& q, const char* kind) {
      q.put(2);
      q.put(6);
      const std::vector<int> snap = q.snapshot();
      const std::size_t size = q.qsize();
      const std::vector<int> gets = drain(q);
      EXPECT_EQ(snap.size(), size);
      log.push_back(std::string(kind) + " snapshot " + py(snap) + " gets " + py(gets));
    };
    tendril::Queue<int> fifo(0, {5, 3, 8, 1, 9});
    check(fifo, "Queue");
    tendril::LifoQueue<int> lifo(0, {5, 3, 8, 1, 9});
    check(lifo, "LifoQueue");
    tendril::PriorityQueue<int> prio(0, {5, 3, 8, 1, 9});
    check(prio, "PriorityQueue");
    tendril::PriorityQueue<int, std::greater<int>> highest(0, {5, 3, 8, 1, 9});
    check(highest, "PriorityQueue greater");
    log.push_back("empty " + py(tendril::Queue<int>().snapshot()));
  });
  EXPECT_EQ(log, (Log{"Queue snapshot [5, 3, 8, 1, 9, 2, 6] gets [5, 3, 8, 1, 9, 2, 6]",
                      "LifoQueue snapshot [6, 2, 9, 1, 8, 3, 5] gets [6, 2, 9, 1, 8, 3, 5]",
                      "PriorityQueue snapshot [1, 2, 3, 5, 6, 8, 9] gets [1, 2, 3, 5, 6, 8, 9]",
                      "PriorityQueue greater snapshot [9, 8, 6, 5, 3, 2, 1] gets [9, 8, 6, 5, 3, "
                      "2, 1]",
                      "empty []"}));
}
