// sim_net.cpp: the simulated network: listeners and byte-stream connections in virtual time.
// Every delivery takes a latency drawn through the hub's Chooser (Fifo: none), so runs are
// seeded and replayable; no file descriptor is touched.
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <system_error>

#include "tendril/net.hpp"
#include "tendril/sim.hpp"

namespace tendril {
namespace {

// One direction of a connection. Flow control: bytes buffered plus bytes in flight never exceed
// the capacity, so a slow reader makes the writer block.
struct Pipe {
  std::string buffer;             // arrived, not yet read
  std::size_t in_flight = 0;      // sent, not yet arrived
  std::int64_t last_arrival = 0;  // deliveries keep their order, like TCP
  bool write_closed = false;
  bool eof = false;  // the writer closed and everything arrived
  Event readable{"stream readable"};
  Event writable{"stream writable"};
};

struct Conn {
  Pipe to_server, to_client;
};

class SimStream final : public net::StreamImpl {
 public:
  SimStream(SimHub& hub, std::shared_ptr<Conn> conn, bool server, Address peer,
            std::uint32_t max_latency_us, std::size_t capacity)
      : hub_(hub),
        conn_(std::move(conn)),
        in_(server ? conn_->to_server : conn_->to_client),
        out_(server ? conn_->to_client : conn_->to_server),
        peer_(std::move(peer)),
        max_latency_us_(max_latency_us),
        capacity_(capacity) {}
  ~SimStream() override { close(); }

  std::size_t recv(char* buf, std::size_t n, std::optional<Duration> timeout) override {
    const std::int64_t deadline = timeout ? hub_.now_ns() + timeout->count() : 0;
    while (in_.buffer.empty() && !in_.eof) {
      in_.readable.clear();
      std::optional<Duration> left;
      if (timeout) left = Duration(std::max<std::int64_t>(0, deadline - hub_.now_ns()));
      if (!in_.readable.wait(left)) throw Timeout();
    }
    const std::size_t k = std::min(n, in_.buffer.size());
    std::memcpy(buf, in_.buffer.data(), k);
    in_.buffer.erase(0, k);
    if (in_.buffer.size() + in_.in_flight < capacity_) in_.writable.set();
    return k;
  }

  std::size_t send(const char* buf, std::size_t n, std::optional<Duration> timeout) override {
    if (out_.write_closed) {
      throw std::system_error(EPIPE, std::generic_category(),
                              "tendril: send to " + peer_.to_string() + " after shutdown");
    }
    const std::int64_t deadline = timeout ? hub_.now_ns() + timeout->count() : 0;
    while (out_.buffer.size() + out_.in_flight >= capacity_) {
      out_.writable.clear();
      std::optional<Duration> left;
      if (timeout) left = Duration(std::max<std::int64_t>(0, deadline - hub_.now_ns()));
      if (!out_.writable.wait(left)) throw Timeout();
    }
    const std::size_t k = std::min(n, capacity_ - out_.buffer.size() - out_.in_flight);
    out_.in_flight += k;
    deliver(std::string(buf, k), false);
    return k;
  }

  void shutdown(net::Shutdown how) override {
    if (how != net::Shutdown::read && !out_.write_closed) {
      out_.write_closed = true;
      deliver({}, true);
    }
  }
  void close() noexcept override {
    if (closed_) return;
    closed_ = true;
    try {
      shutdown(net::Shutdown::both);
    } catch (...) {
    }
  }
  Address peer() const override { return peer_; }

 private:
  // deliver() makes bytes (or the end of the stream) arrive after a latency drawn through the
  // Chooser, never before what was sent earlier.
  void deliver(std::string bytes, bool eof) {
    const std::uint32_t latency_us = max_latency_us_ == 0 ? 0 : hub_.choose(max_latency_us_ + 1);
    const std::int64_t arrival =
        std::max(out_.last_arrival, hub_.now_ns() + std::int64_t{latency_us} * 1000);
    out_.last_arrival = arrival;
    std::shared_ptr<Conn> keep = conn_;
    Pipe* pipe = &out_;
    hub_.start_timer(arrival, Callback::from_function([keep, pipe, bytes = std::move(bytes), eof] {
                       if (eof) {
                         pipe->eof = true;
                       } else {
                         pipe->in_flight -= bytes.size();
                         pipe->buffer += bytes;
                       }
                       pipe->readable.set();
                     }));
  }

  SimHub& hub_;
  std::shared_ptr<Conn> conn_;
  Pipe& in_;
  Pipe& out_;
  Address peer_;
  std::uint32_t max_latency_us_;
  std::size_t capacity_;
  bool closed_ = false;
};

}  // namespace

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
  void close() noexcept override { net_.listeners_.erase(at_.to_string()); }
  Queue<std::unique_ptr<net::StreamImpl>> pending_{0, "accept queue"};

 private:
  SimNet& net_;
  Address at_;
};

std::unique_ptr<net::ListenerImpl> SimNet::listen(const Address& at, int) {
  Address bound = at;
  if (bound.port == 0) bound.port = next_port_++;
  const std::string key = bound.to_string();
  if (listeners_.count(key) != 0) {
    throw std::system_error(EADDRINUSE, std::generic_category(),
                            "tendril: listen on " + key + " (simulated)");
  }
  auto l = std::make_unique<Listener>(*this, bound);
  listeners_.emplace(key, l.get());
  return l;
}

std::unique_ptr<net::StreamImpl> SimNet::connect(const Address& to, std::optional<Duration>) {
  auto it = listeners_.find(to.to_string());
  if (it == listeners_.end()) {
    throw std::system_error(ECONNREFUSED, std::generic_category(),
                            "tendril: connect to " + to.to_string() + " (simulated)");
  }
  auto conn = std::make_shared<Conn>();
  const Address client{"sim-client", next_port_++};
  it->second->pending_.put(std::make_unique<SimStream>(
      hub_, conn, true, client, options_.max_latency_us, options_.buffer_bytes));
  return std::make_unique<SimStream>(hub_, conn, false, to, options_.max_latency_us,
                                     options_.buffer_bytes);
}

net::Backend& SimHub::net() {
  if (!net_) net_ = std::make_unique<SimNet>(*this, options_.net);
  return *net_;
}

}  // namespace tendril
