// SPDX-License-Identifier: Apache-2.0
// tendril/sim.hpp: SimHub, the deterministic simulated hub: virtual time in integer nanoseconds,
// autojump to the next timer, and every nondeterministic choice drawn from one Chooser.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tendril/net.hpp"
#include "tendril/sched.hpp"

namespace tendril {

// Fifo always answers 0, which is gevent's order: callbacks in queueing order, equal-deadline
// timers in arming order.
class Fifo final : public Chooser {
 public:
  std::uint32_t choose(const ChoicePoint&) override { return 0; }
  bool always_default() const override { return true; }
  std::string describe() const override { return "fifo"; }
};

// Random answers uniformly from a generator seeded with `seed` (splitmix64 with an unbiased
// reduction): the same seed gives the same answers on every machine and build.
class Random final : public Chooser {
 public:
  explicit Random(std::uint64_t seed) : seed_(seed), state_(seed) {}
  std::uint32_t choose(const ChoicePoint& point) override { return below(point.n); }
  std::string describe() const override;
  std::uint64_t seed() const noexcept { return seed_; }
  // below(n) draws uniformly from [0, n), n >= 1; the generator other policies build on.
  std::uint32_t below(std::uint32_t n);

 private:
  std::uint64_t next() noexcept;
  std::uint64_t seed_;
  std::uint64_t state_;
};

// Pct is the PCT policy of Burckhardt et al., "A Randomized Scheduler with Probabilistic
// Guarantees of Finding Bugs" (ASPLOS 2010). Mapping onto tendril: a "thread" is what a ready or
// timer alternative would run (a greenlet by id, or a primitive's callback by object id); a
// "step" is one such choice. Each thread gets a random initial priority on first sight (all above
// depth); the highest-priority alternative runs; at d-1 change points drawn uniformly from
// [1, steps] the thread about to run drops to priority i (the i-th change point), below every
// initial priority. Random draws (random_below) are answered uniformly. The paper's bound: a bug
// of depth d is found with probability at least 1 / (n * k^(d-1)) for n threads and k steps.
class Pct final : public Chooser {
 public:
  // Pct(seed, depth, steps): depth >= 1; steps is k, the expected number of ready/timer choices
  // in one run (measure it with a Fifo run; see explore()).
  Pct(std::uint64_t seed, std::uint32_t depth, std::uint64_t steps);
  std::uint32_t choose(const ChoicePoint& point) override;
  std::string describe() const override;
  // probability_bound() is the paper's 1 / (n * k^(d-1)).
  static double probability_bound(std::uint64_t threads, std::uint64_t steps, std::uint32_t depth);
  // threads_seen() counts distinct threads (keys) met so far; decisions() ready/timer choices.
  std::size_t threads_seen() const noexcept { return seen_; }
  std::uint64_t decisions() const noexcept { return decisions_; }

 private:
  std::uint64_t priority_of(std::uint64_t key) {
    // Greenlet ids are small and dense: a vector; anything else: an ordered map.
    if (key < greenlet_priority_.size() && greenlet_priority_[key] != 0) {
      return greenlet_priority_[key];
    }
    return new_priority(key);
  }
  std::uint64_t new_priority(std::uint64_t key);
  std::uint32_t best(const ChoicePoint& point);
  Random rng_;
  std::uint64_t seed_;
  std::uint32_t depth_;
  std::uint64_t steps_;
  std::vector<std::uint64_t> change_points_;  // sorted
  std::size_t next_change_ = 0;
  std::uint64_t decisions_ = 0;
  std::vector<std::uint64_t> greenlet_priority_;     // by greenlet id; 0 = not seen yet
  std::map<std::uint64_t, std::uint64_t> priority_;  // other keys; ordered, never hash order
  std::size_t seen_ = 0;
  std::vector<std::uint64_t> keys_;  // scratch for one choice's alternatives
};

// Pos samples schedules by random priorities, the basic scheme of partial order sampling (Yuan
// et al., "Partial Order Aware Concurrency Sampling", CAV 2018): every pending event (an
// alternative, by key: a greenlet or a primitive's callback) gets a random priority when first
// seen, the highest-priority one runs, and the thread that ran draws a fresh priority for its next
// event. Unlike Random, an event that lost keeps losing while its priority is low, so long delays
// of one event (the shape of many ordering bugs) are as likely as short ones. Random draws
// (random_below) are answered uniformly.
class Pos final : public Chooser {
 public:
  explicit Pos(std::uint64_t seed) : rng_(seed), seed_(seed) {}
  std::uint32_t choose(const ChoicePoint& point) override;
  std::string describe() const override;

 private:
  std::uint64_t priority_of(std::uint64_t key);
  Random rng_;
  std::uint64_t seed_;
  std::map<std::uint64_t, std::uint64_t> priority_;  // by key; ordered, never hash order
  std::vector<std::uint64_t> keys_;                  // scratch for one choice's alternatives
};

// DfsBounding is what a depth-first exploration's bound limits.
enum class DfsBounding : std::uint8_t {
  // delay: the sum of the answers (answer i skips i alternatives: delay bounding, Emmi et al.,
  // POPL 2011). Cheap alternatives first; the 11th entry of a ready queue costs 10.
  delay,
  // choices: the number of answers away from FIFO, whatever their size (preemption-style
  // bounding, Musuvathi and Qadeer, PLDI 2007): a bug that needs the 11th entry four times costs 4.
  choices,
};

// DfsExplorer enumerates schedules depth-first; only schedules whose cost (see DfsBounding) is at
// most `bound` are run. Meant for small tests: the count grows quickly with the bound.
class DfsExplorer {
 public:
  explicit DfsExplorer(std::uint32_t bound, DfsBounding bounding = DfsBounding::delay)
      : bound_(bound), bounding_(bounding) {}
  // next_run() returns the chooser for the next schedule (use it for one run only), or null once
  // every schedule within the bound has been handed out.
  std::unique_ptr<Chooser> next_run();
  std::uint64_t runs() const noexcept { return runs_; }

 private:
  class RunChooser;
  struct Frame {
    std::uint32_t n;
    std::uint32_t answer;
  };
  std::uint32_t bound_;
  DfsBounding bounding_;
  std::vector<Frame> path_;            // the last run's choices
  std::vector<std::uint32_t> prefix_;  // forced answers of the next run
  std::uint64_t runs_ = 0;
  bool done_ = false;
};

// SimNetOptions configures the simulated network.
struct SimNetOptions {
  // Each delivery takes a latency of min_latency_us..max_latency_us microseconds drawn through
  // the Chooser (Fifo: the minimum), never overtaking earlier bytes of the same direction.
  std::uint32_t min_latency_us = 0;
  std::uint32_t max_latency_us = 100;
  // buffer_bytes bounds bytes buffered plus in flight per direction: a slow reader blocks the
  // writer (flow control).
  std::size_t buffer_bytes = 64 * 1024;
  // Drawn faults, so exploration finds fault interleavings: with reset_one_in = n >= 2, each new
  // connection draws choose(n) and answer 1 arms a reset after a number of delivered bytes drawn
  // by choose(reset_within_bytes) (see SimNet::reset_after). Answer 0, the default answer (Fifo),
  // never injects a fault. 0 or 1 turns drawn faults off.
  std::uint32_t reset_one_in = 0;
  std::uint32_t reset_within_bytes = 1024;
};

class SimHub;

// SimNet is the simulated network of a SimHub (tendril/net.hpp on SimHub): listeners and
// byte streams in virtual time, with injectable faults. No file descriptor is touched.
//
// Endpoints: a connection joins its listener's address and a client address
// {"sim-client", port} (ports from 40000 up, shared with listeners bound to port 0; the server
// sees it as Stream::peer()). A fault names endpoints by pattern: an empty host matches any host,
// port 0 any port, and a pair (a, b) matches a connection whose endpoints are a and b in either
// order.
//
// Errors, as Linux gives them: connecting where nothing listens or a refuse() is armed throws
// std::system_error ECONNREFUSED; on a reset connection, bytes already arrived stay readable
// (and an EOF already arrived still reads as EOF), then recv() and send() throw std::system_error
// ECONNRESET; send() after shutdown(write) throws EPIPE. Bytes arriving at a closed stream, or
// closing a stream with unread bytes, reset the connection (the peer gets ECONNRESET).
class SimNet final : public net::Backend {
 public:
  SimNet(SimHub& hub, SimNetOptions options);
  ~SimNet() override;
  std::unique_ptr<net::ListenerImpl> listen(const Address& at, int backlog) override;
  // connect() is immediate unless a partition cuts the path: then it waits (TCP retransmits its
  // SYN) until the partition heals, or throws Timeout when `timeout` passes first. A host that is
  // neither numeric, nor in the name table, nor any listener's host does not resolve: it throws
  // as resolve() does.
  std::unique_ptr<net::StreamImpl> connect(const Address& to,
                                           std::optional<Duration> timeout) override;
  // select() waits in virtual time for a simulated stream to become ready (see tendril::select).
  net::Selected select(const std::vector<net::StreamImpl*>& readable,
                       const std::vector<net::StreamImpl*>& writable,
                       std::optional<Duration> timeout) override;
  // resolve() resolves through the name table below; an unknown name throws as LibevHub's does.
  std::string resolve(const std::string& host) override;
  // green_socket() carries out the POSIX socket calls of a program linked with tendril::green
  // on this network (see the README's "Monkey patching").
  long green_socket(tendril_green_sock& call) override;

  // ---- Names. A host named in listen() or connect(), or looked up with getaddrinfo() or
  // gethostbyname() through tendril::green, resolves through this table: a numeric address
  // stands for itself, "localhost" is 127.0.0.1, and any other name must be added first (an
  // unknown one fails as a real failed lookup does: EAI_NONAME, HOST_NOT_FOUND). ----

  // add_host() makes name resolve to address, a numeric IPv4 or IPv6 address; it replaces what
  // name resolved to before. Throws UsageError for an empty name or an address that is not
  // numeric.
  void add_host(const std::string& name, const std::string& address);
  // resolve_host() is the numeric address name resolves to, or std::nullopt for an unknown name.
  std::optional<std::string> resolve_host(const std::string& name) const;

  // ---- Faults. Call them from anywhere on the hub's thread (a greenlet or outside run()). ----

  // refuse() makes the next `count` connects to an address matching `at` fail with ECONNREFUSED,
  // listener or not (a full backlog, a firewall's reject).
  void refuse(const Address& at, std::size_t count = SIZE_MAX);
  // accept_again() lifts every refuse() armed with the pattern `at`.
  void accept_again(const Address& at);
  // reset() resets every open connection between a and b now (a RST on both ends), and returns
  // how many it reset; bytes in flight are lost.
  std::size_t reset(const Address& a, const Address& b);
  // reset_after() arms a reset of the next `count` connections opened between a and b: each is
  // reset when `bytes` bytes (both directions together) have been delivered; the delivery that
  // crosses the limit hands over the bytes up to it, then the connection resets. bytes = 0 resets
  // it at its first delivery of data.
  void reset_after(const Address& a, const Address& b, std::size_t bytes, std::size_t count = 1);
  // partition() cuts the path between a and b from now + from_now for `length` of virtual time,
  // as a short partition does to TCP: nothing is lost, bytes due to arrive while it lasts (and
  // EOFs) wait until it heals, then arrive after their latency again, in order; connects wait
  // (see connect()). Overlapping partitions add up.
  void partition(const Address& a, const Address& b, Duration from_now, Duration length);
  // open_connections() counts connections neither reset nor closed on both ends.
  std::size_t open_connections() const noexcept;
  // resets() counts the connections reset so far, by any fault.
  std::uint64_t resets() const noexcept { return resets_; }

 private:
  class Listener;
  class Stream;
  struct Conn;
  struct Pipe;
  struct GreenSock;
  friend struct GreenCalls;
  // canonical() is `at` with its host resolved through the name table when it names one.
  Address canonical(const Address& at) const;
  // find_listener() is the listener for `to`, or one on the wildcard address (0.0.0.0, ::) of
  // its port, or nullptr.
  Listener* find_listener(const Address& to) const;
  // open() is connect() from a given client address.
  std::unique_ptr<Stream> open(const Address& client, const Address& to,
                               std::optional<Duration> timeout);
  std::unique_ptr<Listener> open_listener(const Address& at);
  struct Partition {
    Address a, b;
    std::int64_t start_ns, end_ns;
  };
  struct Rule {
    Address a, b;
    std::size_t bytes;
    std::size_t count;
  };
  // partition_end() is when every partition cutting client-server at at_ns has healed, or
  // nullopt when none cuts it.
  std::optional<std::int64_t> partition_end(const Address& client, const Address& server,
                                            std::int64_t at_ns);
  void send_segment(const std::shared_ptr<Conn>& conn, Pipe& pipe, std::string bytes, bool eof);
  void arm(const std::shared_ptr<Conn>& conn, Pipe& pipe, std::int64_t at_ns);
  void arrive(const std::shared_ptr<Conn>& conn, Pipe& pipe);
  void reset_conn(std::shared_ptr<Conn> conn);
  // fault() tells the hub's observer (a Tracer) that a fault took effect.
  void fault(const char* what, const std::string& detail);

  SimHub& hub_;
  SimNetOptions options_;
  std::map<std::string, Listener*> listeners_;  // by address: ordered
  std::vector<std::weak_ptr<Conn>> conns_;      // in opening order, pruned as they go
  std::vector<Partition> partitions_;
  std::vector<Rule> reset_rules_;
  std::vector<std::pair<Address, std::size_t>> refusals_;
  std::uint64_t resets_ = 0;
  std::uint16_t next_port_ = 40000;
  std::map<std::string, std::string> hosts_{{"localhost", "127.0.0.1"}};
  // The simulated sockets of tendril::green, by descriptor; last, so that they close while the
  // rest of the network is still there.
  std::uint64_t green_seq_ = 0;
  bool tearing_down_ = false;
  // Shared: a call waiting on a socket keeps it alive when another greenlet closes it.
  std::map<int, std::shared_ptr<GreenSock>> green_socks_;
};

// SimOptions configures a SimHub.
struct SimOptions {
  StackOptions stack;
  // max_steps bounds each run() (callbacks plus timers): past it the hub stops the run with
  // HubError, so that a greenlet spinning on sleep(0) fails instead of hanging.
  std::uint64_t max_steps = 200'000'000;
  // livelock_steps bounds how long greenlets may only yield: after that many steps in a row in
  // which every step resumed a greenlet from sleep(0) (no timer fired, so virtual time stood
  // still, and no greenlet started, died or was woken by anything else), the hub stops the run
  // with Livelock naming the spinning greenlets. 100,000 steps take a few milliseconds and keep
  // what an exploration records small (a two-greenlet spin under explore()'s defaults: 0.36 s and
  // 61 MB in all, most of it minimising and saving the 100,000-choice schedule). A program that
  // legitimately yields longer than that without ever waiting on anything else raises it; 0 turns
  // the check off.
  std::uint64_t livelock_steps = 100'000;
  // verify_each_step runs verify() after every callback and timer (libev's ev_verify): slow, for
  // tests that hunt a corrupted structure.
  bool verify_each_step = false;
  SimNetOptions net;
};

// SimHub runs greenlets in virtual time. Nothing in it reads the wall clock, addresses, thread
// ids or hash order: the same program and the same Chooser answers give the same run.
class SimHub final : public Hub {
 public:
  // SimHub() uses the Fifo policy.
  explicit SimHub(SimOptions options = {});
  // SimHub(chooser) uses the given policy for every choice; it must not be null.
  explicit SimHub(std::unique_ptr<Chooser> chooser, SimOptions options = {});
  // SimHub(policy) is SimHub(std::make_unique<P>(policy)), e.g. SimHub hub{tendril::Random{7}}.
  template <std::derived_from<Chooser> P>
  explicit SimHub(P policy, SimOptions options = {})
      : SimHub(std::make_unique<P>(std::move(policy)), std::move(options)) {}
  ~SimHub() override;

  std::int64_t now_ns() const override { return now_ns_; }
  // compute_for() advances the virtual clock by d (saturating) without running anything.
  void compute_for(Duration d) override;
  TimerId start_timer(std::int64_t deadline_ns, Callback cb,
                      TimerPriority priority = TimerPriority::normal) override;
  void cancel_timer(TimerId id) noexcept override;
  std::uint32_t choose(std::uint32_t n) override;
  const char* hub_name() const noexcept override { return "SimHub"; }
  std::string position() const override;
  // net() is the simulated network (SimNet).
  net::Backend& net() override;
  // sim_net() is the same network with its fault-injection API (made on first use).
  SimNet& sim_net();
  // verify() checks the core's and the timers' invariants (see Hub::verify).
  void verify() const override;

  // reset() makes the hub start afresh with another policy: time 0, no timers, ids and steps from
  // the start, as a new SimHub would, but keeping its warm stack pool (exploration runs
  // thousands of schedules). Throws UsageError while running or with live greenlets.
  void reset(std::unique_ptr<Chooser> chooser);
  // chooser() is the policy in use.
  Chooser& chooser() noexcept { return *chooser_; }
  // pending_timers() counts armed timers that have neither fired nor been cancelled.
  std::size_t pending_timers() const noexcept { return live_timers_; }
  // timer_heap_entries() counts heap entries, cancelled ones included (bounded: see cancel_timer).
  std::size_t timer_heap_entries() const noexcept { return heap_.size(); }
  // choices() counts the choose() calls that reached the Chooser (those with n >= 2; the Fifo
  // policy is answered inline and never reached).
  std::uint64_t choices() const noexcept { return choices_; }
  // schedule_hash() is the running hash of every recorded choice so far (see ChoiceRecord).
  std::uint64_t schedule_hash() const noexcept { return hash_; }

 protected:
  void run_loop() override;
  void begin_teardown() override;
  void end_teardown() noexcept override;
  void begin_run() override {
    step_limit_ = steps() + options_.max_steps;
    progress_step_ = steps();
  }

 private:
  struct Slot {
    Callback cb;
    std::uint32_t gen = 1;
    bool live = false;
  };
  struct Entry {
    std::int64_t deadline_ns;
    std::uint64_t seq;  // arming order: breaks deadline ties
    std::uint32_t slot;
    std::uint32_t gen;
    TimerPriority priority;
  };
  static bool later(const Entry& a, const Entry& b) noexcept;
  bool entry_live(const Entry& e) const noexcept;
  void fire_due_timers();
  void restore_batch_from(std::size_t i);
  void count_and_check_step();
  [[noreturn, gnu::cold, gnu::noinline]] void step_limit_reached();
  [[noreturn, gnu::cold, gnu::noinline]] void livelock_reached(Callback& taken);
  void compact_heap();
  std::uint32_t decide(const ChoicePoint& point);
  void make_record(ChoiceEvent& record, ChoiceKind kind, std::uint32_t n, std::uint32_t answer,
                   std::uint64_t chosen_key, Action action) noexcept;
  void adopt_chooser();
  void record_default_ready(std::size_t n);
  void record_choice(const ChoicePoint& point, std::uint32_t answer);

  std::unique_ptr<Chooser> chooser_;
  SimOptions options_;
  std::unique_ptr<SimNet> net_;
  // step_limit_, progress_step_ (the last step that was not a sleep(0) resumption) and
  // livelock_limit_ (options_.livelock_steps, or "never" for 0) are Hub's: see run_direct().
  std::uint64_t scanned_marks_ = 0;  // stale_marks() at the last scan for stale callbacks
  bool fifo_ = false;                // answers are all 0 and nothing records: no choice is built
  Chooser* policy_ = nullptr;        // chooser_->policy(): asked for every answer
  ChoiceLog* log_ = nullptr;         // chooser_->inline_log(): the hub records into it
  bool log_zeros_ = false;           // log_ over an always-0 policy: ready choices recorded inline
  bool records_ = false;             // log_, or chooser_->wants_records(): every choice is recorded
  bool tearing_down_ = false;        // between begin_teardown() and end_teardown()
  std::int64_t now_ns_ = 0;
  std::uint64_t choices_ = 0;
  std::uint64_t hash_ = schedule_hash_basis;
  std::uint64_t last_choice_step_ = 0;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::vector<Entry> heap_;   // min-heap on (deadline_ns, seq); may hold cancelled entries
  std::vector<Entry> batch_;  // the timers being fired in this loop turn
  std::size_t live_timers_ = 0;
  std::uint64_t next_seq_ = 0;
};

}  // namespace tendril
