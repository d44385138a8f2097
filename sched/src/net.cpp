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

Listener listen(const Address& at, int backlog) {
  return Listener(current_hub("tendril::listen").net().listen(at, backlog));
}

Stream connect(const Address& to, std::optional<Duration> timeout) {
  return Stream(current_hub("tendril::connect").net().connect(to, timeout));
}

StreamServer::StreamServer(Listener listener, std::function<void(Stream&)> handler,
                           std::size_t concurrency)
    : listener_(std::move(listener)),
      address_(listener_.address()),
      handler_(std::move(handler)),
      handlers_(static_cast<std::int64_t>(concurrency), "stream server handlers") {}

StreamServer::~StreamServer() {
  if (acceptor_ && !acceptor_->dead()) acceptor_->kill(nullptr, false);
}

void StreamServer::accept_loop() {
  while (!stopping_) {
    // At the concurrency limit, stop accepting until a handler finishes (eventlet's serve).
    handlers_.wait_available();
    Stream stream = listener_.accept();
    ++handled_;
    auto shared = std::make_shared<Stream>(std::move(stream));
    handlers_.spawn([this, shared] { handler_(*shared); });
  }
}

void StreamServer::start() {
  if (acceptor_) return;
  acceptor_ = spawn("stream server", [this] { accept_loop(); });
}

void StreamServer::serve_forever() {
  start();
  acceptor_->join();
}

void StreamServer::stop(std::optional<Duration> timeout) {
  stopping_ = true;
  if (acceptor_ && !acceptor_->dead()) acceptor_->kill();
  listener_.close();
  if (!handlers_.join(timeout)) handlers_.kill();
}

}  // namespace tendril
