// SPDX-License-Identifier: Apache-2.0
// net.cpp: the backend-independent half of tendril/net.hpp.
#include "tendril/net.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <list>
#include <system_error>
#include <utility>

namespace tendril {

std::string Address::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

net::StreamImpl& Stream::impl(const char* api) const {
  if (!impl_) throw UsageError(std::string(api) + ": the stream is closed");
  return *impl_;
}

// Call is one blocking call on a stream: it picks the call's timeout (the one given, else the
// stream's own) and notes whether a Timeout came from the stream's own timeout, which is how
// StreamServer tells an idle client from any other Timeout leaving a handler. A recv also marks
// the stream as waiting for its peer while it blocks, for StreamServer's eviction.
class Stream::Call {
 public:
  Call(Stream& stream, std::optional<Duration> given, bool receiving)
      : timeout(given ? given : stream.timeout_),
        stream_(stream),
        by_default_(!given && stream.timeout_),
        receiving_(receiving) {
    stream_.timeout_expired_ = false;
    if (receiving_) {
      stream_.receiving_ = true;
      if (stream_.receive_signal_ && !stream_.receive_signal_->is_set()) {
        stream_.receive_signal_->set();
      }
    }
  }
  ~Call() {
    if (receiving_) stream_.receiving_ = false;
  }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  // operator()(f) runs the backend call f and notes a Timeout of the stream's own timeout.
  template <class F>
  auto operator()(F&& f) -> decltype(f()) {
    try {
      return std::forward<F>(f)();
    } catch (const Timeout& e) {
      // A TimeoutScope's Timeout names its scope; the backend's own names nothing.
      if (by_default_ && e.source() == nullptr) stream_.timeout_expired_ = true;
      throw;
    }
  }

  const std::optional<Duration> timeout;

 private:
  Stream& stream_;
  const bool by_default_;
  const bool receiving_;
};

void Stream::set_timeout(std::optional<Duration> timeout) {
  if (timeout && *timeout < Duration::zero()) {
    throw UsageError("tendril::Stream::set_timeout: negative timeout (" +
                     std::to_string(timeout->count()) + " ns)");
  }
  timeout_ = timeout;
}

std::string Stream::recv(std::size_t n, std::optional<Duration> timeout) {
  net::StreamImpl& s = impl("tendril::Stream::recv");
  std::string out(n, '\0');
  Call call(*this, timeout, true);
  const std::size_t got = call([&] { return s.recv(out.data(), n, call.timeout); });
  out.resize(got);
  return out;
}

std::size_t Stream::recv_into(char* buf, std::size_t n, std::optional<Duration> timeout) {
  net::StreamImpl& s = impl("tendril::Stream::recv_into");
  if (buf == nullptr && n > 0) throw UsageError("tendril::Stream::recv_into: a null buffer");
  Call call(*this, timeout, true);
  return call([&] { return s.recv(buf, n, call.timeout); });
}

std::size_t Stream::send(std::string_view data, std::optional<Duration> timeout) {
  net::StreamImpl& s = impl("tendril::Stream::send");
  Call call(*this, timeout, false);
  return call([&] { return s.send(data.data(), data.size(), call.timeout); });
}

void Stream::sendall(std::string_view data, std::optional<Duration> timeout) {
  Hub& hub = current_hub("tendril::Stream::sendall");
  Call call(*this, timeout, false);
  if (call.timeout && *call.timeout < Duration::zero()) {
    throw UsageError("tendril::Stream::sendall: negative timeout (" +
                     std::to_string(call.timeout->count()) + " ns)");
  }
  // One deadline for the whole buffer, not one per partial write: a client reading one byte a
  // second cannot stretch a send timeout into one per byte.
  const std::int64_t deadline = call.timeout ? hub.now_ns() + call.timeout->count() : 0;
  call([&] {
    while (!data.empty()) {
      std::optional<Duration> left;
      if (call.timeout) left = Duration(std::max<std::int64_t>(0, deadline - hub.now_ns()));
      // Looked up for each write: another greenlet may close the stream meanwhile.
      const std::size_t sent = impl("tendril::Stream::send").send(data.data(), data.size(), left);
      data.remove_prefix(sent);
    }
  });
}

void Stream::shutdown(net::Shutdown how) { impl("tendril::Stream::shutdown").shutdown(how); }

void Stream::close() noexcept {
  if (impl_) {
    impl_->close();
    impl_.reset();
  }
}

Address Stream::peer() const { return impl("tendril::Stream::peer").peer(); }

Stream Listener::accept(std::optional<Duration> timeout) {
  if (!impl_) throw UsageError("tendril::Listener::accept: the listener is closed");
  return Stream(impl_->accept(timeout));
}

Address Listener::address() const {
  if (!impl_) throw UsageError("tendril::Listener::address: the listener is closed");
  return impl_->address();
}

void Listener::close() noexcept {
  if (impl_) {
    impl_->close();
    impl_.reset();
  }
}

net::Selected select(const std::vector<Stream*>& readable, const std::vector<Stream*>& writable,
                     std::optional<Duration> timeout) {
  Hub& hub = current_hub("tendril::select");
  if (timeout && *timeout < Duration::zero()) {
    throw UsageError("tendril::select: negative timeout");
  }
  auto impls = [](const std::vector<Stream*>& streams, const char* list) {
    std::vector<net::StreamImpl*> out;
    out.reserve(streams.size());
    for (std::size_t i = 0; i < streams.size(); ++i) {
      if (streams[i] == nullptr || !streams[i]->impl_) {
        throw UsageError("tendril::select: stream " + std::to_string(i) + " of the " + list +
                         " list is " + (streams[i] == nullptr ? "null" : "closed"));
      }
      out.push_back(streams[i]->impl_.get());
    }
    return out;
  };
  const auto rs = impls(readable, "readable");
  const auto ws = impls(writable, "writable");
  // As gevent's select: look without waiting first; if something is ready (or the timeout is
  // zero), yield once anyway (a sleep(0)) so that a loop over ready streams cannot starve the
  // other greenlets, and return what was ready.
  net::Selected ready = hub.net().select(rs, ws, Duration::zero());
  if (!ready.empty() || (timeout && *timeout == Duration::zero())) {
    sleep(Duration::zero());
    return ready;
  }
  return hub.net().select(rs, ws, timeout);
}

net::Selected net::Backend::select_fds(const std::vector<int>& readable,
                                       const std::vector<int>& writable, std::optional<Duration>) {
  const int fd = readable.empty() ? (writable.empty() ? -1 : writable.front()) : readable.front();
  throw UsageError(std::string("tendril::select_fds: ") +
                   current_hub("tendril::select_fds").hub_name() +
                   " cannot wait on file descriptors" +
                   (fd >= 0 ? " (fd " + std::to_string(fd) + ")" : std::string()) +
                   ": its network is simulated and a real descriptor would make the run "
                   "unrepeatable; use tendril::Stream and select()");
}

int net::Backend::green_wait(const std::pair<int, int>*, std::size_t, std::optional<Duration>,
                             const char*) {
  return -1;
}

void net::Backend::green_closing(int) {}

long net::Backend::green_socket(tendril_green_sock&) { return -ENOSYS; }

net::Selected select_fds(const std::vector<int>& readable, const std::vector<int>& writable,
                         std::optional<Duration> timeout) {
  Hub& hub = current_hub("tendril::select_fds");
  if (timeout && *timeout < Duration::zero()) {
    throw UsageError("tendril::select_fds: negative timeout");
  }
  for (const auto* list : {&readable, &writable}) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      if ((*list)[i] < 0) {
        throw UsageError("tendril::select_fds: fd " + std::to_string((*list)[i]) + " (entry " +
                         std::to_string(i) + " of the " +
                         (list == &readable ? "readable" : "writable") + " list) is negative");
      }
    }
  }
  // The same yield-once rule as select() over streams (gevent's select).
  net::Selected ready = hub.net().select_fds(readable, writable, Duration::zero());
  if (!ready.empty() || (timeout && *timeout == Duration::zero())) {
    sleep(Duration::zero());
    return ready;
  }
  return hub.net().select_fds(readable, writable, timeout);
}

Listener listen(const Address& at, int backlog) {
  return Listener(current_hub("tendril::listen").net().listen(at, backlog));
}

Stream connect(const Address& to, std::optional<Duration> timeout) {
  return Stream(current_hub("tendril::connect").net().connect(to, timeout));
}

std::string resolve(const std::string& host) {
  Hub& hub = current_hub("tendril::resolve");
  if (hub.current() == nullptr) throw UsageError("tendril::resolve: call it from a greenlet");
  if (host.empty()) throw UsageError("tendril::resolve: an empty host name");
  return hub.net().resolve(host);
}

std::string net::Backend::resolve(const std::string& host) {
  std::string out;
  int rc = 0;
  blocking_call([&] {
    // IPv4 first, as gethostbyname; then any family.
    for (const int family : {AF_INET, AF_UNSPEC}) {
      addrinfo hints{};
      hints.ai_family = family;
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* res = nullptr;
      rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
      if (rc != 0 || res == nullptr) continue;
      char text[INET6_ADDRSTRLEN] = {};
      const void* addr = res->ai_family == AF_INET6
                             ? static_cast<const void*>(
                                   &reinterpret_cast<const sockaddr_in6*>(res->ai_addr)->sin6_addr)
                             : static_cast<const void*>(
                                   &reinterpret_cast<const sockaddr_in*>(res->ai_addr)->sin_addr);
      ::inet_ntop(res->ai_family, addr, text, sizeof text);
      ::freeaddrinfo(res);
      out = text;
      return;
    }
  });
  if (out.empty()) throw_unresolved(host, rc == 0 ? EAI_NONAME : rc);
  return out;
}

void net::throw_unresolved(const std::string& host, int gai_error) {
  throw std::system_error(EHOSTUNREACH, std::generic_category(),
                          "tendril: cannot resolve " + host + ": " + ::gai_strerror(gai_error));
}

// State is shared by the server object, its accept loop and its handlers, so that none of them
// outlives what it uses.
struct StreamServer::State {
  // Connection is one accepted connection whose handler has not yet died.
  struct Connection {
    std::shared_ptr<Stream> stream;
    Ref<Greenlet> handler;
    bool evicted = false;
  };

  State(Listener l, std::function<void(Stream&)> h, const Options& o)
      : listener(std::move(l)),
        handler(std::move(h)),
        options(o),
        handlers(static_cast<std::int64_t>(o.concurrency), "stream server handlers") {}
  Listener listener;
  std::function<void(Stream&)> handler;
  const Options options;
  Pool handlers;
  // In accept order, so the front is the oldest: eviction scans from there.
  std::list<Connection> connections;
  // Set when a handler starts a recv or dies: what the accept loop waits for when every handler
  // is busy and none can be evicted yet.
  std::shared_ptr<Event> changed = std::make_shared<Event>("stream server handler change");
  Ref<Greenlet> acceptor;
  std::size_t handled = 0;
  std::size_t timed_out = 0;
  std::size_t evicted = 0;
  bool stopping = false;
};

namespace {

StreamServer::Options with_concurrency(std::size_t concurrency) {
  StreamServer::Options options;
  options.concurrency = concurrency;
  return options;
}

}  // namespace

StreamServer::StreamServer(Listener listener, std::function<void(Stream&)> handler,
                           std::size_t concurrency)
    : StreamServer(std::move(listener), std::move(handler), with_concurrency(concurrency)) {}

StreamServer::StreamServer(Listener listener, std::function<void(Stream&)> handler, Options options)
    : address_(listener.address()) {
  if (options.concurrency == 0) {
    throw UsageError("tendril::StreamServer: concurrency must be at least 1");
  }
  if (options.idle_timeout && *options.idle_timeout <= Duration::zero()) {
    // Zero would time out every connection whose first bytes are not already there.
    throw UsageError("tendril::StreamServer: idle_timeout must be positive (got " +
                     std::to_string(options.idle_timeout->count()) +
                     " ns); pass std::nullopt for no limit");
  }
  state_ = std::make_shared<State>(std::move(listener), std::move(handler), options);
}

StreamServer::~StreamServer() {
  state_->stopping = true;
  // The accept loop holds the state; the state must not hold the loop back (a cycle).
  const Ref<Greenlet> acceptor = std::move(state_->acceptor);
  if (acceptor && !acceptor->dead()) acceptor->kill(nullptr, false);
  state_->handlers.kill(nullptr, false);
}

std::size_t StreamServer::handled() const noexcept { return state_->handled; }
std::size_t StreamServer::timed_out() const noexcept { return state_->timed_out; }
std::size_t StreamServer::evicted() const noexcept { return state_->evicted; }
const StreamServer::Options& StreamServer::options() const noexcept { return state_->options; }

bool StreamServer::evict_one(State& state) {
  // The oldest connection whose handler waits for its client: a slowloris client has been
  // connected longer than the clients that keep arriving, and a handler blocked in recv is
  // waiting on the client, not doing the server's work. (nginx likewise closes its oldest idle
  // keep-alive connection when it runs out of connections.)
  for (State::Connection& c : state.connections) {
    if (c.evicted || c.handler->dead() || !c.stream->receiving_) continue;
    c.evicted = true;
    ++state.evicted;
    c.handler->kill(nullptr, false);
    return true;
  }
  return false;
}

void StreamServer::accept_loop(const std::shared_ptr<State>& state) {
  const bool evict = state->options.evict_when_full;
  while (!state->stopping) {
    // At the concurrency limit, stop accepting until a handler finishes (eventlet's serve).
    // With eviction the loop accepts first: a waiting connection is what makes it evict.
    if (!evict) state->handlers.wait_available();
    if (state->stopping) return;
    auto stream = std::make_shared<Stream>(state->listener.accept());
    stream->set_timeout(state->options.idle_timeout);
    // Handlers that have not yet run, or that compute, cannot be evicted: wait until one starts
    // waiting for its client or one finishes, then look again. After an eviction, wait for the
    // victim to unwind.
    while (evict && state->handlers.full()) {
      state->changed->clear();
      if (evict_one(*state)) break;
      state->changed->wait();
    }
    state->handlers.wait_available();
    if (state->stopping) return;
    if (evict) stream->receive_signal_ = state->changed;
    ++state->handled;
    auto it = state->connections.insert(state->connections.end(), State::Connection{stream, {}});
    it->handler = state->handlers.spawn([state, stream] {
      try {
        state->handler(*stream);
      } catch (const Timeout& e) {
        // The client stayed idle for idle_timeout: close quietly, like eventlet's wsgi server.
        // Any other Timeout is the handler's own failure and is reported as one.
        if (e.source() != nullptr || !stream->timeout_expired()) throw;
        ++state->timed_out;
        stream->close();
      }
    });
    // The link holds the state weakly: the state holds the handler through `connections`.
    std::weak_ptr<State> weak = state;
    it->handler->rawlink([weak, it](Greenlet&) {
      if (const auto s = weak.lock()) {
        s->connections.erase(it);
        s->changed->set();
      }
    });
  }
}

void StreamServer::start() {
  if (state_->acceptor) return;
  std::shared_ptr<State> state = state_;
  state_->acceptor = spawn("stream server", [state] { accept_loop(state); });
}

void StreamServer::serve_forever() {
  start();
  const Ref<Greenlet> acceptor = state_->acceptor;
  acceptor->join();
}

void StreamServer::stop(std::optional<Duration> timeout) {
  state_->stopping = true;
  const Ref<Greenlet> acceptor = std::move(state_->acceptor);
  if (acceptor && !acceptor->dead()) acceptor->kill();
  state_->listener.close();
  if (!state_->handlers.join(timeout)) state_->handlers.kill();
}

namespace {

// ServeState is what serve() shares with its handlers, which may outlive it (StopServe).
struct ServeState {
  ServeState(std::size_t concurrency, std::function<void(Stream&, const Address&)> fn)
      : slots(static_cast<std::int64_t>(concurrency)), handle(std::move(fn)) {}
  Semaphore slots;
  std::function<void(Stream&, const Address&)> handle;
  Ref<Greenlet> server;               // the greenlet in serve(), while it serves
  bool serving = true;                // until the first failure is forwarded or serve() ends
  std::list<Ref<Greenlet>> handlers;  // running ones
};

}  // namespace

void serve(Listener& listener, std::function<void(Stream&, const Address&)> handle,
           std::size_t concurrency) {
  if (concurrency == 0) throw UsageError("tendril::serve: concurrency must be at least 1, got 0");
  Hub& hub = current_hub("tendril::serve");
  if (hub.current() == nullptr) {
    throw UsageError("tendril::serve: call it from a greenlet (it blocks the caller)");
  }
  auto state = std::make_shared<ServeState>(concurrency, std::move(handle));
  state->server = Ref<Greenlet>(hub.current());
  try {
    for (;;) {
      // As eventlet: accept, then wait for a free handler (its pool.spawn blocks).
      auto conn = std::make_shared<Stream>(listener.accept());
      state->slots.acquire();
      const Address peer = conn->peer();
      auto slot = std::make_shared<std::list<Ref<Greenlet>>::iterator>();
      Ref<Greenlet> g = spawn("serve handler", [state, conn, peer, slot] {
        struct Done {
          ServeState& state;
          Stream& conn;
          std::list<Ref<Greenlet>>::iterator& at;
          ~Done() {
            conn.close();
            state.handlers.erase(at);
            state.slots.release();
          }
        } done{*state, *conn, *slot};
        try {
          state->handle(*conn, peer);
        } catch (const GreenletExit&) {
          throw;  // killed: not a failure (eventlet ignores it too)
        } catch (...) {
          if (!state->serving) throw;  // serve() is over: report it as any greenlet's error
          state->serving = false;
          // eventlet's _stop_checker: raise it in the server, at its blocking call.
          state->server->kill(std::current_exception(), false);
        }
      });
      state->handlers.push_back(g);
      *slot = std::prev(state->handlers.end());
    }
  } catch (const StopServe&) {
    state->serving = false;
    state->server = nullptr;
    return;
  } catch (...) {
    state->serving = false;
    state->server = nullptr;
    // The other handlers are killed, so that their streams are closed rather than left behind.
    std::vector<Ref<Greenlet>> others(state->handlers.begin(), state->handlers.end());
    killall(others);
    throw;
  }
}

}  // namespace tendril
