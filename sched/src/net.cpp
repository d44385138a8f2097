// net.cpp: the backend-independent half of tendril/net.hpp.
#include "tendril/net.hpp"

namespace tendril {

std::string Address::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

net::StreamImpl& Stream::impl(const char* api) const {
  if (!impl_) throw UsageError(std::string(api) + ": the stream is closed");
  return *impl_;
}

std::string Stream::recv(std::size_t n, std::optional<Duration> timeout) {
  std::string out(n, '\0');
  const std::size_t got = impl("tendril::Stream::recv").recv(out.data(), n, timeout);
  out.resize(got);
  return out;
}

std::size_t Stream::send(std::string_view data, std::optional<Duration> timeout) {
  return impl("tendril::Stream::send").send(data.data(), data.size(), timeout);
}

void Stream::sendall(std::string_view data, std::optional<Duration> timeout) {
  // One deadline for the whole buffer, not one per partial write.
  Hub& hub = current_hub("tendril::Stream::sendall");
  const std::int64_t deadline = timeout ? hub.now_ns() + timeout->count() : 0;
  while (!data.empty()) {
    std::optional<Duration> left;
    if (timeout) left = Duration(std::max<std::int64_t>(0, deadline - hub.now_ns()));
    const std::size_t sent = send(data, left);
    data.remove_prefix(sent);
  }
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
  return hub.net().select(impls(readable, "readable"), impls(writable, "writable"), timeout);
}

Listener listen(const Address& at, int backlog) {
  return Listener(current_hub("tendril::listen").net().listen(at, backlog));
}

Stream connect(const Address& to, std::optional<Duration> timeout) {
  return Stream(current_hub("tendril::connect").net().connect(to, timeout));
}

// State is shared by the server object, its accept loop and its handlers, so that none of them
// outlives what it uses.
struct StreamServer::State {
  State(Listener l, std::function<void(Stream&)> h, std::size_t concurrency)
      : listener(std::move(l)),
        handler(std::move(h)),
        handlers(static_cast<std::int64_t>(concurrency), "stream server handlers") {}
  Listener listener;
  std::function<void(Stream&)> handler;
  Pool handlers;
  Ref<Greenlet> acceptor;
  std::size_t handled = 0;
  bool stopping = false;
};

StreamServer::StreamServer(Listener listener, std::function<void(Stream&)> handler,
                           std::size_t concurrency)
    : address_(listener.address()) {
  if (concurrency == 0) throw UsageError("tendril::StreamServer: concurrency must be at least 1");
  state_ = std::make_shared<State>(std::move(listener), std::move(handler), concurrency);
}

StreamServer::~StreamServer() {
  state_->stopping = true;
  // The accept loop holds the state; the state must not hold the loop back (a cycle).
  const Ref<Greenlet> acceptor = std::move(state_->acceptor);
  if (acceptor && !acceptor->dead()) acceptor->kill(nullptr, false);
  state_->handlers.kill(nullptr, false);
}

std::size_t StreamServer::handled() const noexcept { return state_->handled; }

void StreamServer::accept_loop(const std::shared_ptr<State>& state) {
  while (!state->stopping) {
    // At the concurrency limit, stop accepting until a handler finishes (eventlet's serve).
    state->handlers.wait_available();
    if (state->stopping) return;
    auto stream = std::make_shared<Stream>(state->listener.accept());
    ++state->handled;
    state->handlers.spawn([state, stream] { state->handler(*stream); });
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

}  // namespace tendril
