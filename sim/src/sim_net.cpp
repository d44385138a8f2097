// SPDX-License-Identifier: Apache-2.0
// sim_net.cpp: the simulated network: listeners and byte-stream connections in virtual time.
// Every delivery takes a latency drawn through the hub's Chooser (Fifo: the minimum), so runs are
// seeded and replayable; faults (refusals, resets, partitions) are injected through SimNet's API
// or drawn through the Chooser. No file descriptor is touched.
#include <netdb.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <system_error>

#include "sim_net_impl.hpp"
#include "tendril/net.hpp"
#include "tendril/sim.hpp"

namespace tendril {

using sim_detail::matches;
using sim_detail::net_error;
using sim_detail::pair_matches;

SimNet::SimNet(SimHub& hub, SimNetOptions options) : hub_(hub), options_(options) {}

SimNet::~SimNet() {
  // The hub goes with the network (or starts afresh): the sockets tendril::green left open close
  // without telling it, in the order they were made.
  tearing_down_ = true;
  std::vector<std::shared_ptr<GreenSock>> socks;
  for (auto& [fd, sock] : green_socks_) socks.push_back(std::move(sock));
  green_socks_.clear();
  std::sort(socks.begin(), socks.end(),
            [](const auto& a, const auto& b) { return a->seq < b->seq; });
  socks.clear();
}

std::unique_ptr<net::ListenerImpl> SimNet::listen(const Address& at, int) {
  return open_listener(at);
}

std::unique_ptr<SimNet::Listener> SimNet::open_listener(const Address& at) {
  Address bound = canonical(at);
  if (bound.port == 0) bound.port = next_port_++;
  const std::string key = bound.to_string();
  if (listeners_.count(key) != 0) net_error(EADDRINUSE, "listen on " + key);
  auto l = std::make_unique<Listener>(*this, bound);
  listeners_.emplace(key, l.get());
  return l;
}

Address SimNet::canonical(const Address& at) const {
  auto it = hosts_.find(at.host);
  return it == hosts_.end() ? at : Address{it->second, at.port};
}

SimNet::Listener* SimNet::find_listener(const Address& to) const {
  for (const char* host : {"", "0.0.0.0", "::"}) {
    const Address at{*host != '\0' ? std::string(host) : to.host, to.port};
    auto it = listeners_.find(at.to_string());
    if (it != listeners_.end()) return it->second;
  }
  return nullptr;
}

std::unique_ptr<net::StreamImpl> SimNet::connect(const Address& to,
                                                 std::optional<Duration> timeout) {
  if (timeout && *timeout < Duration::zero())
    throw UsageError("tendril::connect: negative timeout");
  if (!resolve_host(to.host)) {
    // A name the table does not know is still a host when a listener uses it (tests name their
    // servers freely: listen({"server", 80})); else it does not resolve, as on a real network.
    const bool used = std::any_of(listeners_.begin(), listeners_.end(), [&](const auto& l) {
      return l.second->address().host == to.host;
    });
    if (!used) net::throw_unresolved(to.host, EAI_NONAME);
  }
  return open(Address{"sim-client", next_port_++}, canonical(to), timeout);
}

std::unique_ptr<SimNet::Stream> SimNet::open(const Address& client, const Address& to,
                                             std::optional<Duration> timeout) {
  const std::optional<std::int64_t> deadline =
      timeout ? std::optional(hub_.now_ns() + timeout->count()) : std::nullopt;
  // A partition drops the SYN; TCP sends it again until the partition heals or the caller's
  // timeout passes.
  while (const auto heal = partition_end(client, to, hub_.now_ns())) {
    if (deadline && *deadline < *heal) {
      sleep(Duration(*deadline - hub_.now_ns()));
      throw Timeout();
    }
    sleep(Duration(*heal - hub_.now_ns()));
  }
  for (auto& [pattern, count] : refusals_) {
    if (count == 0 || !matches(pattern, to)) continue;
    if (count != SIZE_MAX) --count;
    fault("refused", client.to_string() + " -> " + to.to_string());
    net_error(ECONNREFUSED, "connect to " + to.to_string() + " refused by a fault");
  }
  Listener* listener = find_listener(to);
  if (listener == nullptr) net_error(ECONNREFUSED, "connect to " + to.to_string());

  auto conn = std::make_shared<Conn>();
  conn->client = client;
  conn->server = listener->address();
  for (Rule& rule : reset_rules_) {
    if (rule.count == 0 || !pair_matches(rule.a, rule.b, client, conn->server)) continue;
    --rule.count;
    conn->reset_after = rule.bytes;
    break;
  }
  if (!conn->reset_after && options_.reset_one_in >= 2 && hub_.choose(options_.reset_one_in) == 1) {
    conn->reset_after = hub_.choose(std::max<std::uint32_t>(1, options_.reset_within_bytes));
  }
  if (conns_.size() >= 64 && (conns_.size() & (conns_.size() - 1)) == 0) {
    std::erase_if(conns_, [](const std::weak_ptr<Conn>& c) { return c.expired(); });
  }
  conns_.push_back(conn);
  listener->pending_.put(std::make_unique<Stream>(*this, conn, true));
  listener->acceptable.set();
  return std::make_unique<Stream>(*this, conn, false);
}

net::Selected SimNet::select(const std::vector<net::StreamImpl*>& readable,
                             const std::vector<net::StreamImpl*>& writable,
                             std::optional<Duration> timeout) {
  // Hold the connections, not the streams: another greenlet may close a stream meanwhile.
  struct Watched {
    std::shared_ptr<Conn> conn;
    Pipe* pipe;
  };
  auto watch = [](const std::vector<net::StreamImpl*>& streams, bool read) {
    std::vector<Watched> out;
    out.reserve(streams.size());
    for (net::StreamImpl* s : streams) {
      auto* sim = dynamic_cast<Stream*>(s);
      if (sim == nullptr) throw UsageError("tendril::select: a stream of another hub's network");
      out.push_back({sim->conn(), read ? &sim->in() : &sim->out()});
    }
    return out;
  };
  const std::vector<Watched> rs = watch(readable, true);
  const std::vector<Watched> ws = watch(writable, false);
  const std::size_t capacity = options_.buffer_bytes;
  auto can_read = [](const Watched& w) {
    return !w.pipe->buffer.empty() || w.pipe->eof || w.conn->reset;
  };
  auto can_write = [capacity](const Watched& w) {
    return w.conn->reset || w.pipe->write_closed ||
           w.pipe->buffer.size() + w.pipe->in_flight < capacity;
  };
  const std::optional<std::int64_t> deadline =
      timeout ? std::optional(hub_.now_ns() + timeout->count()) : std::nullopt;
  for (;;) {
    net::Selected out;
    for (std::size_t i = 0; i < rs.size(); ++i) {
      if (can_read(rs[i])) out.readable.push_back(i);
    }
    for (std::size_t i = 0; i < ws.size(); ++i) {
      if (can_write(ws[i])) out.writable.push_back(i);
    }
    if (!out.empty() || (deadline && hub_.now_ns() >= *deadline)) return out;
    // Nothing ready: link to every event that signals a change, then wait for the first.
    const WaitToken token = hub_.begin_wait("tendril::select");
    std::vector<std::pair<Event*, LinkId>> links;
    struct Unlink {
      std::vector<std::pair<Event*, LinkId>>& links;
      ~Unlink() {
        for (auto& [event, id] : links) event->unlink(id);
      }
    } unlink{links};
    auto link = [&](Event& e) {
      e.clear();
      links.emplace_back(&e,
                         e.rawlink([this, token] { hub_.schedule(Hub::wake_callback(token)); }));
    };
    for (const Watched& w : rs) link(w.pipe->readable);
    for (const Watched& w : ws) link(w.pipe->writable);
    if (!hub_.park(token, "select", nullptr, deadline)) return {};
  }
}

void SimNet::refuse(const Address& at, std::size_t count) { refusals_.emplace_back(at, count); }

void SimNet::accept_again(const Address& at) {
  std::erase_if(refusals_,
                [&](const auto& r) { return r.first.host == at.host && r.first.port == at.port; });
}

std::size_t SimNet::reset(const Address& a, const Address& b) {
  std::size_t n = 0;
  for (const auto& weak : conns_) {
    std::shared_ptr<Conn> conn = weak.lock();
    if (!conn || conn->reset || conn->open_ends == 0) continue;
    if (!pair_matches(a, b, conn->client, conn->server)) continue;
    reset_conn(conn);
    ++n;
  }
  return n;
}

void SimNet::reset_after(const Address& a, const Address& b, std::size_t bytes, std::size_t count) {
  reset_rules_.push_back({a, b, bytes, count});
}

void SimNet::partition(const Address& a, const Address& b, Duration from_now, Duration length) {
  if (from_now < Duration::zero() || length < Duration::zero()) {
    throw UsageError("tendril::SimNet::partition: negative start or length");
  }
  const std::int64_t start = hub_.now_ns() + from_now.count();
  partitions_.push_back({a, b, start, start + length.count()});
  fault("partition", a.to_string() + " <-> " + b.to_string() + " from +" +
                         std::to_string(from_now.count()) + " ns for " +
                         std::to_string(length.count()) + " ns");
}

std::size_t SimNet::open_connections() const noexcept {
  std::size_t n = 0;
  for (const auto& weak : conns_) {
    const std::shared_ptr<Conn> conn = weak.lock();
    if (conn && !conn->reset && conn->open_ends > 0) ++n;
  }
  return n;
}

std::optional<std::int64_t> SimNet::partition_end(const Address& client, const Address& server,
                                                  std::int64_t at_ns) {
  const std::int64_t now = hub_.now_ns();
  std::erase_if(partitions_, [now](const Partition& p) { return p.end_ns <= now; });
  // Partitions that overlap or touch add up: follow them to the end of the last one.
  std::optional<std::int64_t> end;
  std::int64_t t = at_ns;
  for (bool extended = true; extended;) {
    extended = false;
    for (const Partition& p : partitions_) {
      if (p.start_ns <= t && t < p.end_ns && pair_matches(p.a, p.b, client, server)) {
        t = p.end_ns;
        end = t;
        extended = true;
      }
    }
  }
  return end;
}

void SimNet::send_segment(const std::shared_ptr<Conn>& conn, Pipe& pipe, std::string bytes,
                          bool eof) {
  const std::uint32_t lo = options_.min_latency_us;
  const std::uint32_t hi = std::max(lo, options_.max_latency_us);
  const std::uint32_t latency_us = hi == lo ? lo : lo + hub_.choose(hi - lo + 1);
  const std::int64_t latency_ns = std::int64_t{latency_us} * 1000;
  const std::int64_t arrival = std::max(pipe.last_arrival, hub_.now_ns() + latency_ns);
  pipe.last_arrival = arrival;
  pipe.in_flight += bytes.size();
  pipe.segments.push_back({std::move(bytes), eof, arrival, latency_ns});
  if (!pipe.timer) arm(conn, pipe, arrival);
}

void SimNet::arm(const std::shared_ptr<Conn>& conn, Pipe& pipe, std::int64_t at_ns) {
  Pipe* p = &pipe;
  pipe.timer = hub_.start_timer(at_ns, Callback::from_function([this, conn, p] {
                                  p->timer.reset();
                                  arrive(conn, *p);
                                }));
}

void SimNet::arrive(const std::shared_ptr<Conn>& conn, Pipe& pipe) {
  if (conn->reset || pipe.segments.empty()) return;
  const std::int64_t now = hub_.now_ns();
  if (const auto heal = partition_end(conn->client, conn->server, now)) {
    // The path is cut: TCP retransmits until it heals, so every segment in flight arrives after
    // the heal plus its latency, still in order.
    std::int64_t previous = 0;
    for (Pipe::Segment& s : pipe.segments) {
      s.arrival_ns = std::max({s.arrival_ns, *heal + s.latency_ns, previous});
      previous = s.arrival_ns;
    }
    pipe.last_arrival = std::max(pipe.last_arrival, previous);
    arm(conn, pipe, pipe.segments.front().arrival_ns);
    return;
  }
  while (!pipe.segments.empty() && pipe.segments.front().arrival_ns <= now) {
    Pipe::Segment s = std::move(pipe.segments.front());
    pipe.segments.pop_front();
    if (s.eof) {
      pipe.eof = true;
      continue;
    }
    pipe.in_flight -= s.bytes.size();
    if (pipe.reader_closed) {
      reset_conn(conn);  // a closed socket answers data with a RST
      return;
    }
    if (conn->reset_after && s.bytes.size() >= *conn->reset_after - conn->delivered) {
      const std::size_t k = *conn->reset_after - conn->delivered;
      pipe.buffer.append(s.bytes, 0, k);
      conn->delivered += k;
      reset_conn(conn);
      return;
    }
    conn->delivered += s.bytes.size();
    pipe.buffer += s.bytes;
  }
  pipe.readable.set();
  if (!pipe.segments.empty()) arm(conn, pipe, pipe.segments.front().arrival_ns);
}

void SimNet::fault(const char* what, const std::string& detail) {
  if (Observer* o = hub_.observer(); o != nullptr) [[unlikely]] {
    o->on_fault(hub_.current(), what, detail);
  }
}

void SimNet::reset_conn(std::shared_ptr<Conn> conn) {
  if (conn->reset) return;
  conn->reset = true;
  ++resets_;
  fault("reset", conn->client.to_string() + " <-> " + conn->server.to_string());
  for (Pipe* pipe : {&conn->to_server, &conn->to_client}) {
    if (pipe->timer) hub_.cancel_timer(*std::exchange(pipe->timer, std::nullopt));
    pipe->segments.clear();
    pipe->in_flight = 0;
    pipe->readable.set();
    pipe->writable.set();
  }
}

SimNet& SimHub::sim_net() {
  if (!net_) net_ = std::make_unique<SimNet>(*this, options_.net);
  return *net_;
}

net::Backend& SimHub::net() { return sim_net(); }

}  // namespace tendril
