// SPDX-License-Identifier: Apache-2.0
// seeds.hpp: the seed programs from gevent's tutorial and the greenlet docs, written with
// tendril. Each runs on its own simulated hub (or on the hub it is given) and prints to `out`; the
// example programs, the demo and the tests all call these.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "tendril/net.hpp"
#include "tendril/trace/events.hpp"

namespace seeds {

// foo_bar(): two greenlets hand control to each other with sleep(0). With a non-null `trace`,
// the run is recorded there (every switch, for tendril-viz's flow graph).
void foo_bar(std::ostream& out, tendril::trace::Trace* trace = nullptr);
// producer_consumer(): a producer puts three jobs on a Queue of size 1 that a consumer takes;
// the producer blocks while the queue is full. Recorded into `trace` if given.
void producer_consumer(std::ostream& out, tendril::trace::Trace* trace = nullptr);
// sleepers(): func1/func2/func3 sleep 3/2/2 s of virtual time; prints func2, func3, func1.
void sleepers(std::ostream& out);
// tasks(): task(pid) sleeps a random 0-2 ms, run synchronously then asynchronously; the random
// durations and the scheduling come from Random(seed), so a seed always prints the same order.
void tasks(std::ostream& out, std::uint64_t seed);
// subclass(): a Greenlet subclass overriding run() (gevent's MyNoopGreenlet).
void subclass(std::ostream& out);
// actors(): gevent's Actor example: Pinger and Ponger greenlets, each with an inbox Queue and a
// receive loop, exchange `rounds` messages each, then stop.
void actors(std::ostream& out, int rounds);
// raw_switch(): the greenlet library's gr1.switch()/gr2.switch() example; prints 12 56 34.
void raw_switch(std::ostream& out);

// select_polling(): gevent's select example on `hub` (SimHub or LibevHub): gr1 and gr2 each poll
// with select([], [], [], 2 s) while gr3 does some stuff (sleeps 1 s); times are the hub's. On
// SimHub it ends at virtual time 2 s; on LibevHub after about 2 s of wall time.
void select_polling(std::ostream& out, tendril::Hub& hub);

// hello_http_handler() is the seed's hello-world HTTP/1.0 handler: it reads the request head
// (at most 64 KiB, 10 s), sleeps 0.1 s cooperatively, and answers 200 "Hello World\n". A client
// that disconnects mid-request is dropped quietly. Use it with a StreamServer on either hub.
void hello_http_handler(tendril::Stream& s);
// HttpLoad is what hello_http_load() measured.
struct HttpLoad {
  int ok = 0;                 // answered "HTTP/1.0 200 OK" with the full body
  int failed = 0;             // refused, reset, timed out or answered otherwise
  tendril::Duration elapsed;  // hub time from the first connect to the last answer
};
// hello_http_load() runs the hello server on `hub` and `clients` concurrent clients against it
// (the seed's `ab -n 200 -c 200`), each sending one GET; prints one summary line to `out`.
HttpLoad hello_http_load(std::ostream& out, tendril::Hub& hub, int clients);

// two_spinners(): a livelock: greenlets 'a' and 'b' each wait, yielding with sleep(0), for the
// other to finish first; neither ever does. Call it inside tendril::run (SimHub reports a
// tendril::Livelock naming both).
void two_spinners();
// bank_race(): a check-then-act race: two withdrawals of 80 from an account holding 100; each
// checks the balance, yields (to write an audit log), then withdraws; the second first does some
// work (eight yields). Throws std::logic_error on an overdraft. gevent's FIFO order never breaks
// it; other interleavings do. Call it inside tendril::run.
void bank_race();
// lost_update_far(): a lost update two answers away from FIFO, each far down the ready queue:
// `a` reads a counter, yields, writes it back plus one; `b` yields twice, then increments; eight
// noise greenlets (three yields each) queue between them, so each wakeup of b that must go ahead
// of a's is the 9th or 10th entry of the ready queue. Throws std::logic_error("lost update:
// counter is 1") when it happens. Call it inside tendril::run.
void lost_update_far();
// explore_bank(): explores bank_race under fifo, random and pct, saves the first failing
// schedule under `artifacts` (minimised), prints its report, and replays it. `command` is the
// program to name in the printed replay commands. With TENDRIL_REPLAY naming a schedule of
// Demo.BankRace, it replays that instead and prints what the replay did.
void explore_bank(std::ostream& out, const std::string& artifacts,
                  const std::string& command = "examples/demo.sh");

}  // namespace seeds
