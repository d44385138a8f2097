// SPDX-License-Identifier: Apache-2.0
// The queues, pinned to gevent 22.10's observable order (tests/gevent_twins/queue_semantics.py
// prints gevent's side of each test).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tendril/sim.hpp"

using namespace std::chrono_literals;
using tendril::Ref;
using tendril::SimHub;
using Log = std::vector<std::string>;

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
