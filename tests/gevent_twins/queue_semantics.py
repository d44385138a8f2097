# SPDX-License-Identifier: Apache-2.0
"""queue_semantics.py: gevent's behaviour for the orders tests/sched/queue_test.cpp pins.

Each block is the twin of the tendril test named in its comment; the output is compared with
queue_semantics.expected. Run with Debian's /usr/bin/python3 and python3-gevent 22.10.
"""
import gevent
from gevent.queue import Queue, LifoQueue, PriorityQueue, JoinableQueue, Channel, Empty, Full

log = []


def done(name):
    print(name, log)
    log.clear()


# q1: Queue.GettersServedInOrderAndPutNeverSwitches
def q1():
    q = Queue()
    gs = [gevent.spawn(lambda i=i: log.append("g%d %s" % (i, q.get()))) for i in range(3)]
    gevent.sleep(0)
    for item in "abc":
        q.put(item)
    log.append("after puts")
    gevent.joinall(gs)
q1(); done("q1")


# q2: Queue.BlockedPuttersServedInOrder
def q2():
    q = Queue(1)
    q.put("first")
    gs = [gevent.spawn(lambda i=i: (q.put("p%d" % i), log.append("p%d returned" % i))) for i in range(2)]
    gevent.sleep(0)
    log.append("got %s" % q.get())
    log.append("size %d" % q.qsize())
    gevent.sleep(0)
    log.append("got %s" % q.get())
    gevent.sleep(0)
    log.append("got %s" % q.get())
    gevent.joinall(gs)
q2(); done("q2")


# q3: Queue.PutterThatGetsBeforeYieldingTakesItsOwnItem
def q3():
    q = Queue()
    g = gevent.spawn(lambda: log.append("getter %s" % q.get()))
    gevent.sleep(0)
    q.put("mine")
    log.append("main %s" % q.get())
    q.put("yours")
    g.join()
q3(); done("q3")


# q4: Queue.NowaitAndTimeouts
def q4():
    q = Queue(1)
    try:
        q.get_nowait()
    except Empty:
        log.append("Empty")
    q.put_nowait(1)
    try:
        q.put_nowait(2)
    except Full:
        log.append("Full")
    try:
        q.put(3, timeout=0.5)
    except Full:
        log.append("Full after timeout")
    q.get()
    try:
        q.get(timeout=0.25)
    except Empty:
        log.append("Empty after timeout")
q4(); done("q4")


# q5: Queue.LifoAndPriorityPickWhenTheGetterWakes
def q5():
    for cls in (LifoQueue, PriorityQueue):
        q = cls()
        g = gevent.spawn(lambda: log.append("%s %s" % (cls.__name__, q.get())))
        gevent.sleep(0)
        q.put(2)
        q.put(3)
        q.put(1)
        g.join()
        log.append("then %s %s" % (q.get(), q.get()))
q5(); done("q5")


# q6: Queue.JoinableQueueTaskDone
def q6():
    q = JoinableQueue()
    def worker():
        while True:
            item = q.get()
            gevent.sleep(0.1)
            log.append("done %s" % item)
            q.task_done()
    w = gevent.spawn(worker)
    for i in range(3):
        q.put(i)
    q.join()
    log.append("joined")
    w.kill()
    try:
        q.task_done()
    except ValueError:
        log.append("ValueError")
q6(); done("q6")


# q7: Queue.ChannelPutBlocksUntilTaken
def q7():
    ch = Channel()
    def putter():
        ch.put("x")
        log.append("put returned")
    p = gevent.spawn(putter)
    gevent.sleep(0)
    log.append("putter blocked %s" % (not p.dead))
    log.append("got %s" % ch.get())
    p.join()
    try:
        ch.put_nowait("y")
    except Full:
        log.append("Full")
    g = gevent.spawn(lambda: log.append("getter got %s" % ch.get()))
    gevent.sleep(0)
    ch.put_nowait("z")
    log.append("put_nowait returned")
    g.join()
q7(); done("q7")


# q8: Queue.KilledGetterLosesNoItem
def q8():
    q = Queue()
    g1 = gevent.spawn(q.get)
    g2 = gevent.spawn(lambda: log.append("g2 %s" % q.get()))
    gevent.sleep(0)
    g1.kill()
    q.put("item")
    g2.join()
    log.append("size %d" % q.qsize())
q8(); done("q8")
# t_chsize: Queue.ChannelSizeIsAlwaysZero
def t_chsize():
    import gevent.queue
    ch = gevent.queue.Channel()
    say = lambda: log.append("%d %s %s balance %d" % (ch.qsize(), "empty" if ch.empty() else "not empty", "full" if ch.full() else "not full", ch.balance))
    say(); p = gevent.spawn(ch.put, 1); gevent.sleep(0); say()
    log.append("got %d" % ch.get()); p.join()
t_chsize(); print("t_chsize", log); log.clear()


# t_items_beyond: Queue.ItemsBeyondMaxsizeAreAllQueued
def t_items_beyond():
    for cls in (Queue, LifoQueue, PriorityQueue, JoinableQueue):
        q = cls(2, [3, 1, 4, 1, 5])
        log.append("%s qsize %d full %s maxsize %d" % (cls.__name__, q.qsize(), q.full(), q.maxsize))
        try:
            q.put_nowait(9)
        except Full:
            log.append(" put_nowait Full")
        got = []
        while not q.empty():
            got.append(q.get())
        log.append(" got %s" % got)
t_items_beyond(); done("t_items_beyond")


# t_overfull_putter: Queue.OverfullQueueBlocksPutterUntilBelowMaxsize
def t_overfull_putter():
    q = Queue(2, [1, 2, 3])
    p = gevent.spawn(lambda: (q.put(4), log.append("put 4 returned")))
    gevent.sleep(0)
    log.append("got %s" % q.get())
    gevent.sleep(0)
    log.append("qsize %d" % q.qsize())
    log.append("got %s" % q.get())
    gevent.sleep(0)
    log.append("qsize %d" % q.qsize())
    p.join()
    assert list(q.queue) == [3, 4]
t_overfull_putter(); done("t_overfull_putter")


# t_braced: Queue.BracedArgumentsPickTheRightConstructor (C++'s ({5}) and {5} are Queue(5);
# gevent has no braces, so the twin passes the same values by position)
def t_braced():
    for label in ("({5})", "{5}"):
        q = Queue(5)
        log.append("%s maxsize %d qsize %d" % (label, q.maxsize, q.qsize()))
    q = Queue(None, [5])
    log.append("(0, {5}) got %s" % [q.get()])
    q = Queue(None, ["a", "b"])
    log.append("(0, {a, b}) got %s" % list(q.queue))
    q = Queue(None, [7, 8])
    log.append("(0, vector) got %s" % [q.get(), q.get()])
    q = Queue(None, [11])
    log.append("move-only got %d" % q.get())
t_braced(); done("t_braced")


# t_joinable_items: Queue.JoinableQueueItemsAreUnfinishedTasks
def t_joinable_items():
    q = JoinableQueue(None, [1, 2, 3])
    log.append("unfinished %d join %s" % (q.unfinished_tasks, q.join(timeout=0)))
    def worker():
        while True:
            item = q.get()
            log.append("done %d" % item)
            q.task_done()
    w = gevent.spawn(worker)
    log.append("joined %s" % q.join())
    w.kill()
    more = JoinableQueue(None, [1, 2, 3], 5)
    done_count = 0
    try:
        while True:
            more.task_done()
            done_count += 1
    except ValueError:
        pass
    log.append("given 5: task_done ok %d qsize %d" % (done_count, more.qsize()))
    none = JoinableQueue(None, (), 2)
    log.append("no items, given 2: unfinished %d join %s" % (none.unfinished_tasks, none.join(timeout=0)))
    empty = JoinableQueue()
    log.append("default: unfinished %d join %s" % (empty.unfinished_tasks, empty.join(timeout=0)))
t_joinable_items(); done("t_joinable_items")


# t_joinable_below: Queue.JoinableQueueCountBelowItemsIsRefused. tendril throws UsageError for
# these; this block records what gevent does instead: 0 counts the items, 1 lets join() return
# with 2 items still queued, -1 makes task_done() fail at once and join() never return.
def t_joinable_below():
    for given in (0, 1, -1):
        q = JoinableQueue(None, [1, 2, 3], given)
        log.append("given %d: unfinished %d" % (given, q.unfinished_tasks))
        try:
            q.get()
            q.task_done()
            log.append(" after one task_done join %s qsize %d" % (q.join(timeout=0), q.qsize()))
        except ValueError:
            log.append(" task_done ValueError")
t_joinable_below(); done("t_joinable_below")


# t_until: Queue.UntilStopsAtTheSentinel
def t_until():
    q = Queue()
    def consumer():
        for x in q:
            log.append("got %s" % x)
        log.append("loop ended")
    c = gevent.spawn(consumer)
    gevent.sleep(0)
    for item in ("a", "b", StopIteration, "c"):
        q.put(item)
        log.append("put %s" % getattr(item, "__name__", item))
    log.append("puts done")
    c.join()
    log.append("left %s" % list(q.queue))
t_until(); done("t_until")


# t_until_kill: Queue.UntilKilledWhileBlockedTakesNoItem
def t_until_kill():
    q = Queue()
    def consumer():
        try:
            for x in q:
                log.append("got %s" % x)
        except gevent.GreenletExit:
            log.append("killed in get")
            raise
    c = gevent.spawn(consumer)
    gevent.sleep(0)
    q.put("a")
    gevent.sleep(0)
    c.kill()
    log.append("dead %s" % c.dead)
    q.put("b")
    log.append("left %s" % list(q.queue))
t_until_kill(); done("t_until_kill")


# t_channel_until: Queue.ChannelUntilStopsAtTheSentinel
def t_channel_until():
    ch = Channel()
    def consumer():
        for x in ch:
            log.append("got %s" % x)
        log.append("loop ended")
    def producer():
        for item in ("a", "b", StopIteration):
            ch.put(item)
            log.append("put %s" % getattr(item, "__name__", item))
    gevent.joinall([gevent.spawn(consumer), gevent.spawn(producer)])
    log.append("balance %d" % ch.balance)
t_channel_until(); done("t_channel_until")


# t_snapshot: Queue.SnapshotIsGetOrder. tendril's snapshot() is the get order ("gets"); gevent's
# q.queue (printed as "queue") is that only for Queue: put order for LifoQueue, heap order for
# PriorityQueue.
def t_snapshot():
    for label, make in (("Queue", Queue), ("LifoQueue", LifoQueue), ("PriorityQueue", PriorityQueue),
                        ("PriorityQueue greater", lambda m, items: PriorityQueue(m, [-i for i in items]))):
        q = make(None, [5, 3, 8, 1, 9])
        sign = -1 if label.endswith("greater") else 1
        q.put(sign * 2)
        q.put(sign * 6)
        queue = [sign * i for i in q.queue]
        size = q.qsize()
        gets = [sign * q.get() for _ in range(size)]
        log.append("%s queue %s gets %s" % (label, queue, gets))
    log.append("empty %s" % list(Queue().queue))
t_snapshot(); done("t_snapshot")


# t_put_during_pass: Queue.APutDuringThePassQueuesNoOtherPass.
def t_put_during_pass():
    q = Queue()
    def g1():
        log.append("g1 got %s" % q.get())
        q.put("b")
        log.append("g1 put b")
        gevent.sleep(0)
        log.append("g1 back")
    def g2():
        log.append("g2 got %s" % q.get())
    def g3():
        log.append("g3 got %s" % q.get())
    gs = [gevent.spawn(g1), gevent.spawn(g2), gevent.spawn(g3)]
    gevent.sleep(0)
    q.put("a")
    gevent.sleep(0)
    q.put("c")
    log.append("main put c")
    gevent.joinall(gs)
t_put_during_pass(); done("t_put_during_pass")


# t_passes: DirectSwitch.QueuePassesAreTheSameStepForStepWithoutThem (its first part: the order
# tendril keeps whether a queue's unlock pass runs on the hub's stack or greenlet to greenlet).
def t_passes():
    q = Queue(2)
    lifo = LifoQueue()
    ch = Channel()
    def getter(g):
        for i in range(4):
            v = q.get()
            log.append("g%d got %d" % (g, v))
            lifo.put(v)
            if i % 2 == 0:
                gevent.sleep(0)
    def putter(p):
        for i in range(6):
            q.put(p * 10 + i)
            log.append("p%d put %d" % (p, p * 10 + i))
    def cp():
        for i in range(3):
            ch.put(100 + i)
            log.append("cp put %d" % (100 + i))
    def cg():
        for i in range(3):
            log.append("cg got %d" % ch.get())
    def late():
        try:
            Queue().get(timeout=0.05)
        except Empty:
            log.append("late: empty")
    gs = [gevent.spawn(getter, g) for g in range(3)]
    gs += [gevent.spawn(putter, p) for p in range(2)]
    gs += [gevent.spawn(cp), gevent.spawn(cg), gevent.spawn(late)]
    gevent.joinall(gs)
    while not lifo.empty():
        log.append("lifo %d" % lifo.get())
t_passes(); done("t_passes")


# t_ping_pong: DirectSwitch.AQueuePingPongGoesFromGreenletToGreenlet.
def t_ping_pong():
    to_b, to_main = Queue(), Queue()
    def b():
        for i in range(4):
            v = to_b.get()
            log.append("b got %d" % v)
            to_main.put(v + 1)
    g = gevent.spawn(b)
    for i in range(4):
        to_b.put(i * 10)
        log.append("main got %d" % to_main.get())
    g.join()
t_ping_pong(); done("t_ping_pong")
