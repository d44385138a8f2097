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
