// SPDX-License-Identifier: Apache-2.0
// sim_net_impl.hpp: the simulated network's insides, shared by sim_net.cpp (streams, listeners,
// faults) and sim_green_sockets.cpp (the POSIX socket calls tendril::green routes to it).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <system_error>

#include "tendril/net.hpp"
#include "tendril/sim.hpp"

namespace tendril {
namespace sim_detail {

// matches() says whether an endpoint pattern names addr: an empty host is any host, port 0 any
// port.
inline bool matches(const Address& pattern, const Address& addr) {
  return (pattern.host.empty() || pattern.host == addr.host) &&
         (pattern.port == 0 || pattern.port == addr.port);
}

inline bool pair_matches(const Address& a, const Address& b, const Address& x, const Address& y) {
  return (matches(a, x) && matches(b, y)) || (matches(a, y) && matches(b, x));
}

[[noreturn]] inline void net_error(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), "tendril: " + what + " (simulated)");
}

}  // namespace sim_detail

// One direction of a connection. Flow control: bytes buffered plus bytes in flight never exceed
// the capacity, so a slow reader makes the writer block.
struct SimNet::Pipe {
  struct Segment {
    std::string bytes;
    bool eof;
    std::int64_t arrival_ns;
    std::int64_t latency_ns;  // kept to take it again after a partition heals
  };
  std::string buffer;             // arrived, not yet read
  std::deque<Segment> segments;   // sent, not yet arrived, in sending order
  std::size_t in_flight = 0;      // bytes in `segments`
  std::int64_t last_arrival = 0;  // deliveries keep their order, like TCP
  std::optional<TimerId> timer;   // armed for the first segment's arrival
  bool write_closed = false;      // the writer shut its side down (FIN sent)
  bool eof = false;               // the FIN arrived
  bool reader_closed = false;     // the reading stream is closed: data arriving resets
  Event readable{"stream readable"};
  Event writable{"stream writable"};
};

struct SimNet::Conn {
  Address client, server;
  Pipe to_server, to_client;
  bool reset = false;
  int open_ends = 2;
  std::optional<std::size_t> reset_after;  // delivered bytes (both directions) before a reset
  std::size_t delivered = 0;
};

class SimNet::Stream final : public net::StreamImpl {
 public:
  Stream(SimNet& net, std::shared_ptr<Conn> conn, bool server)
      : net_(net),
        conn_(std::move(conn)),
        in_(server ? conn_->to_server : conn_->to_client),
        out_(server ? conn_->to_client : conn_->to_server),
        server_(server) {}
  ~Stream() override { close(); }

  std::size_t recv(char* buf, std::size_t n, std::optional<Duration> timeout) override {
    SimHub& hub = net_.hub_;
    const std::int64_t deadline = timeout ? hub.now_ns() + timeout->count() : 0;
    while (in_.buffer.empty() && !in_.eof && !conn_->reset) {
      in_.readable.clear();
      std::optional<Duration> left;
      if (timeout) left = Duration(std::max<std::int64_t>(0, deadline - hub.now_ns()));
      if (!in_.readable.wait(left)) throw Timeout();
    }
    // As Linux: bytes that arrived are read first, an EOF that arrived before a reset wins.
    if (!in_.buffer.empty()) {
      const std::size_t k = std::min(n, in_.buffer.size());
      std::memcpy(buf, in_.buffer.data(), k);
      in_.buffer.erase(0, k);
      if (in_.buffer.size() + in_.in_flight < net_.options_.buffer_bytes) in_.writable.set();
      return k;
    }
    if (in_.eof) return 0;
    sim_detail::net_error(ECONNRESET, "recv from " + peer().to_string());
  }

  std::size_t send(const char* buf, std::size_t n, std::optional<Duration> timeout) override {
    SimHub& hub = net_.hub_;
    check_can_send();
    if (n == 0) return 0;
    const std::size_t capacity = net_.options_.buffer_bytes;
    const std::int64_t deadline = timeout ? hub.now_ns() + timeout->count() : 0;
    while (out_.buffer.size() + out_.in_flight >= capacity && !conn_->reset) {
      out_.writable.clear();
      std::optional<Duration> left;
      if (timeout) left = Duration(std::max<std::int64_t>(0, deadline - hub.now_ns()));
      if (!out_.writable.wait(left)) throw Timeout();
    }
    check_can_send();
    const std::size_t k = std::min(n, capacity - out_.buffer.size() - out_.in_flight);
    net_.send_segment(conn_, out_, std::string(buf, k), false);
    return k;
  }

  void shutdown(net::Shutdown how) override {
    if (how != net::Shutdown::read && !out_.write_closed) {
      out_.write_closed = true;
      if (!conn_->reset) net_.send_segment(conn_, out_, {}, true);
    }
  }

  void close() noexcept override {
    if (closed_) return;
    closed_ = true;
    --conn_->open_ends;
    if (net_.tearing_down_) return;  // the hub is going: nothing to tell it
    in_.reader_closed = true;
    try {
      if (!conn_->reset && !in_.buffer.empty()) {
        net_.reset_conn(conn_);  // Linux answers a close with unread bytes with a RST
      } else {
        shutdown(net::Shutdown::both);
      }
    } catch (...) {
      // Only the Chooser could throw here (a replay running out); the stream is closed anyway.
    }
  }

  Address peer() const override { return server_ ? conn_->client : conn_->server; }
  Address local() const { return server_ ? conn_->server : conn_->client; }

  // What select() needs: the connection and both directions, kept alive past this stream.
  const std::shared_ptr<Conn>& conn() const { return conn_; }
  Pipe& in() const { return in_; }
  Pipe& out() const { return out_; }

 private:
  void check_can_send() const {
    if (conn_->reset) sim_detail::net_error(ECONNRESET, "send to " + peer().to_string());
    if (out_.write_closed)
      sim_detail::net_error(EPIPE, "send to " + peer().to_string() + " after shutdown");
  }

  SimNet& net_;
  std::shared_ptr<Conn> conn_;
  Pipe& in_;
  Pipe& out_;
  bool server_;
  bool closed_ = false;
};

class SimNet::Listener final : public net::ListenerImpl {
 public:
  Listener(SimNet& net, Address at) : net_(net), at_(std::move(at)) {}
  ~Listener() override { close(); }
  std::unique_ptr<net::StreamImpl> accept(std::optional<Duration> timeout) override {
    try {
      return pending_.get(true, timeout);
    } catch (const Empty&) {
      throw Timeout();
    }
  }
  Address address() const override { return at_; }
  void close() noexcept override {
    if (net_.tearing_down_) return;  // the hub is going; the backlog goes with pending_
    auto it = net_.listeners_.find(at_.to_string());
    if (it != net_.listeners_.end() && it->second == this) net_.listeners_.erase(it);
    // Connections still in the backlog are reset, as a closing listening socket does.
    try {
      while (!pending_.empty()) net_.reset_conn(pending_.get_nowait()->conn());
    } catch (...) {
    }
  }
  Queue<std::unique_ptr<Stream>> pending_{0, "accept queue"};
  // acceptable is set each time a connection joins pending_ (for tendril::green's poll).
  Event acceptable{"accept queue"};

 private:
  SimNet& net_;
  Address at_;
};

// GreenSock is one socket a program made through tendril::green (sim_green_sockets.cpp): fresh,
// listening or connected.
struct SimNet::GreenSock {
  std::uint64_t seq = 0;  // creation order
  int domain = 0;         // AF_INET or AF_INET6
  std::optional<Address> bound;
  std::optional<Duration> recv_timeout;  // SO_RCVTIMEO, exactly (the kernel rounds to its tick)
  std::optional<Duration> send_timeout;  // SO_SNDTIMEO
  std::unique_ptr<Listener> listener;
  std::unique_ptr<Stream> stream;
  // closed: the program closed the descriptor while a call waited on the socket; the waiters
  // wake and fail with EBADF (as gevent's cancel_wait), and the socket goes when they have left
  // (as a kernel socket outlives its descriptor while a call is in it).
  bool closed = false;
};

}  // namespace tendril
