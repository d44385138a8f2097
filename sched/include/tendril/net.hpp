// SPDX-License-Identifier: Apache-2.0
// tendril/net.hpp: cooperative TCP streams, written against the running hub's network backend:
// LibevHub uses non-blocking sockets and libev; SimHub a simulated network (SimNet). A blocking
// call (accept, connect, recv, send) suspends only the calling greenlet.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tendril/sched.hpp"

struct tendril_green_sock;  // sched/green/green_hooks.h

namespace tendril {

// Address is a host (name or numeric IPv4/IPv6) and a port.
struct Address {
  std::string host;
  std::uint16_t port = 0;
  // to_string() renders "127.0.0.1:8000" or "[::1]:8000".
  std::string to_string() const;
};

namespace net {

// Shutdown says which direction shutdown() closes.
enum class Shutdown { read, write, both };

// StreamImpl is one connected byte stream of a backend.
class StreamImpl {
 public:
  virtual ~StreamImpl() = default;
  // recv() waits until some bytes or EOF arrive (at most timeout, else throws Timeout) and
  // returns how many were read (0 at EOF).
  virtual std::size_t recv(char* buf, std::size_t n, std::optional<Duration> timeout) = 0;
  // send() waits until at least one byte can be sent and returns how many were.
  virtual std::size_t send(const char* buf, std::size_t n, std::optional<Duration> timeout) = 0;
  virtual void shutdown(Shutdown how) = 0;
  virtual void close() noexcept = 0;
  virtual Address peer() const = 0;
};

// ListenerImpl is one listening socket of a backend.
class ListenerImpl {
 public:
  virtual ~ListenerImpl() = default;
  // accept() waits for the next connection (at most timeout, else throws Timeout).
  virtual std::unique_ptr<StreamImpl> accept(std::optional<Duration> timeout) = 0;
  virtual Address address() const = 0;
  virtual void close() noexcept = 0;
};

// Selected lists the streams select() found ready, as indexes into the lists it was given, in
// increasing order.
struct Selected {
  std::vector<std::size_t> readable;
  std::vector<std::size_t> writable;
  // empty() is true when nothing was ready (select() timed out).
  bool empty() const noexcept { return readable.empty() && writable.empty(); }
};

// Backend is what a hub offers for TCP.
class Backend {
 public:
  virtual ~Backend() = default;
  // listen() opens a listener at `at` (port 0: a free port).
  virtual std::unique_ptr<ListenerImpl> listen(const Address& at, int backlog) = 0;
  // connect() opens a stream to `to`, waiting at most timeout (then throws Timeout).
  virtual std::unique_ptr<StreamImpl> connect(const Address& to,
                                              std::optional<Duration> timeout) = 0;
  // select() waits until one of the streams, all of this backend and open, is ready (see
  // tendril::select); with both lists empty it waits for the timeout alone.
  virtual Selected select(const std::vector<StreamImpl*>& readable,
                          const std::vector<StreamImpl*>& writable,
                          std::optional<Duration> timeout) = 0;
  // resolve() is the numeric address host names (see tendril::resolve). The default looks it up
  // with getaddrinfo on the hub's blocking-call pool.
  virtual std::string resolve(const std::string& host);
  // select_fds() is select() over the process's own file descriptors (see tendril::select_fds).
  // The default refuses: a simulated network has no file descriptors to wait on.
  virtual Selected select_fds(const std::vector<int>& readable, const std::vector<int>& writable,
                              std::optional<Duration> timeout);
  // green_wait() is for tendril::green, which makes libc's blocking socket calls cooperative:
  // it waits until one of the n (descriptor, events) pairs may be ready (events: 1 readable, 2
  // writable, 3 either) or the timeout passes, and returns 1 (ready, or maybe: the caller asks
  // the kernel again), 0 (timed out) or -2 (green_closing() closed one of them meanwhile).
  // reason names the wait in reports. The default returns -1: this backend has no descriptors
  // to wait on (SimHub's simulated network). Call it from a greenlet.
  virtual int green_wait(const std::pair<int, int>* fds, std::size_t n,
                         std::optional<Duration> timeout, const char* reason);
  // green_closing() says fd is about to be closed: every green_wait() on it returns -2 (gevent's
  // cancel_wait; a wait on a closed descriptor would otherwise never end). The default does
  // nothing.
  virtual void green_closing(int fd);
  // green_socket() is for tendril::green on a backend whose sockets are simulated: it carries
  // out one POSIX socket call (socket, bind, listen, accept, connect, the reads and writes,
  // shutdown, close, getsockname, getpeername, poll, a name lookup) on the simulated network and
  // returns its result (>= 0) or -errno. The default returns -ENOSYS: the kernel's sockets are
  // used. Call it on the hub's thread.
  virtual long green_socket(tendril_green_sock& call);
};

// throw_unresolved() throws resolve()'s error for host, with getaddrinfo's error code.
[[noreturn]] void throw_unresolved(const std::string& host, int gai_error);

}  // namespace net

// Stream is a connected TCP stream; movable, closed on destruction. Errors from the network
// (refused, reset, unreachable) are std::system_error with the errno.
//
// Timeouts follow gevent's socket model: a blocking call given a timeout waits at most that long,
// and a call given none uses the stream's own timeout (set_timeout(); none by default, so a
// stream from connect() waits forever, as a Python socket does). When either passes, the call
// throws tendril::Timeout. StreamServer gives each accepted stream its idle_timeout this way.
class Stream {
 public:
  Stream() = default;
  explicit Stream(std::unique_ptr<net::StreamImpl> impl) : impl_(std::move(impl)) {}
  Stream(Stream&&) noexcept = default;
  Stream& operator=(Stream&&) noexcept = default;
  ~Stream() { close(); }

  // recv() returns up to n bytes as soon as some arrive, or "" at EOF.
  std::string recv(std::size_t n, std::optional<Duration> timeout = std::nullopt);
  // recv_into() is recv() into the caller's buffer (gevent's recv_into): it returns how many
  // bytes it wrote there, 0 at EOF. Throws UsageError for a null buffer.
  std::size_t recv_into(char* buf, std::size_t n, std::optional<Duration> timeout = std::nullopt);
  // send() sends some of data and returns how many bytes went; sendall() sends all of it, the
  // timeout bounding the whole call (as Python's sendall since 3.5 and gevent's), not each write.
  std::size_t send(std::string_view data, std::optional<Duration> timeout = std::nullopt);
  void sendall(std::string_view data, std::optional<Duration> timeout = std::nullopt);
  // shutdown() closes one or both directions; close() releases the stream (idempotent).
  void shutdown(net::Shutdown how = net::Shutdown::write);
  void close() noexcept;
  bool is_open() const noexcept { return impl_ != nullptr; }
  Address peer() const;

  // set_timeout() sets the timeout of every later recv, send and sendall called without one
  // (gevent's socket.settimeout): std::nullopt waits forever, zero only takes what is ready.
  // Throws UsageError for a negative timeout. May be called at any time, even on a closed stream.
  void set_timeout(std::optional<Duration> timeout);
  // timeout() is the stream's own timeout (std::nullopt: none).
  std::optional<Duration> timeout() const noexcept { return timeout_; }
  // timeout_expired() is true when the last recv, send or sendall threw Timeout because the
  // stream's own timeout passed (not a timeout given to the call, nor a TimeoutScope's).
  bool timeout_expired() const noexcept { return timeout_expired_; }

 private:
  friend class StreamServer;
  friend net::Selected select(const std::vector<Stream*>& readable,
                              const std::vector<Stream*>& writable,
                              std::optional<Duration> timeout);
  class Call;
  net::StreamImpl& impl(const char* api) const;
  std::unique_ptr<net::StreamImpl> impl_;
  std::optional<Duration> timeout_;
  bool timeout_expired_ = false;
  // StreamServer's eviction: receiving_ is true while a recv waits for the peer, and a recv
  // sets receive_signal_ (the server's) as it starts, so a server waiting for an evictable
  // handler wakes up.
  bool receiving_ = false;
  std::shared_ptr<Event> receive_signal_;
};

// Listener accepts connections; movable, closed on destruction.
class Listener {
 public:
  Listener() = default;
  explicit Listener(std::unique_ptr<net::ListenerImpl> impl) : impl_(std::move(impl)) {}
  Listener(Listener&&) noexcept = default;
  Listener& operator=(Listener&&) noexcept = default;
  ~Listener() { close(); }
  // accept() waits for the next connection.
  Stream accept(std::optional<Duration> timeout = std::nullopt);
  // address() is where it listens (the real port when 0 was asked).
  Address address() const;
  void close() noexcept;
  bool is_open() const noexcept { return impl_ != nullptr; }

 private:
  std::unique_ptr<net::ListenerImpl> impl_;
};

// listen() opens a listener on the running hub's network (port 0 picks a free one); the
// backlog is capped by the kernel (net.core.somaxconn).
Listener listen(const Address& at, int backlog = 1024);
// connect() opens a stream to `to`, waiting at most timeout. A host name is resolved as resolve()
// does.
Stream connect(const Address& to, std::optional<Duration> timeout = std::nullopt);

// resolve() is gevent's socket.gethostbyname: the numeric address `host` names, IPv4 when it has
// one ("127.0.0.1" for "localhost"); a numeric address is returned as it is. LibevHub looks the
// name up with getaddrinfo on the hub's blocking-call pool, so the calling greenlet waits and the
// others run (many greenlets resolving at once share the pool's threads); SimHub through its
// network's name table (SimNet::add_host), never the real resolver. A name that does not resolve
// throws std::system_error with EHOSTUNREACH and the resolver's reason, the same on both hubs:
// "tendril: cannot resolve nowhere.test: Name or service not known: No route to host" (what()
// of std::system_error appends the errno's text). Throws UsageError for an
// empty host or outside a greenlet.
std::string resolve(const std::string& host);

// select() is gevent's select.select(rlist, wlist, [], timeout) over streams: it blocks the
// calling greenlet until at least one stream of `readable` can be read without blocking (bytes,
// EOF or a pending error such as a reset) or one of `writable` can be written, or until timeout
// passes, and returns the indexes of every stream ready at that moment, in index order (empty
// lists on timeout: no Timeout is thrown). With both lists empty it just waits for the timeout,
// as select([], [], [], t) does; without a timeout it waits forever. When streams are ready at
// once (or the timeout is zero) it still yields once, a sleep(0), before returning what was
// ready, as gevent's does, so a loop over ready streams cannot starve other greenlets. Throws
// UsageError for a closed stream, a null pointer or a negative timeout. Call it from a greenlet.
net::Selected select(const std::vector<Stream*>& readable, const std::vector<Stream*>& writable,
                     std::optional<Duration> timeout = std::nullopt);

// select_fds() is select() over file descriptors the program holds itself (pipes, sockets made
// without tendril, a terminal), as gevent's select.select takes them: the same wait, the same
// yield-once rule, indexes of the ready ones. LibevHub waits on them with libev. SimHub refuses
// with UsageError: its network and clock are simulated, and a real descriptor becomes ready on
// the kernel's schedule, not the simulation's, so waiting on it would make runs unrepeatable
// (wrap such input in a simulated stream instead). A negative fd is a UsageError (gevent: a
// ValueError); a closed one is std::system_error with EBADF (gevent: OSError EBADF). Call it
// from a greenlet.
net::Selected select_fds(const std::vector<int>& readable, const std::vector<int>& writable,
                         std::optional<Duration> timeout = std::nullopt);

// StopServe, thrown by a serve() handler, ends serve() cleanly (eventlet's StopServe).
struct StopServe : std::exception {
  const char* what() const noexcept override { return "tendril::StopServe"; }
};

// serve() is eventlet's serve(sock, handle, concurrency): it blocks the calling greenlet and, for
// each connection listener accepts, runs handle(stream, peer) in a new greenlet, at most
// `concurrency` at a time (a connection accepted beyond that waits for a handler to finish). The
// stream is closed when its handler returns or throws. A handler that throws ends serve():
// StopServe makes it return normally and leaves the other handlers running, as eventlet does;
// any other exception is rethrown by serve(), after the other handlers are killed and their
// streams closed (eventlet leaves them running). GreenletExit from a handler (killed) is not a
// failure. Only the first failure ends serve(); a handler failing after that is reported as any
// greenlet's error. Throws UsageError for a concurrency of 0 or outside a greenlet; what
// accept() throws (the listener closed) ends serve() the same way. StreamServer, below, keeps
// its own rule: it reports a failing handler and keeps serving.
void serve(Listener& listener, std::function<void(Stream&, const Address&)> handle,
           std::size_t concurrency = 1000);

// StreamServer accepts connections and runs handler(stream) in a greenlet for each, at most
// `concurrency` at once (eventlet's serve). stop() closes the listener and waits for the
// handlers (killing them after timeout). Destroying a running server stops accepting and kills
// its handlers without waiting; the accept loop and the handlers keep what they use alive until
// they are gone.
//
// Slow and idle clients (slowloris) are bounded two ways, both on by default (see Options):
// - idle_timeout, 60 s by default, becomes each accepted stream's timeout (Stream::set_timeout)
//   before the handler runs, so a recv or send that waits that long on the client throws
//   Timeout (eventlet's socket_timeout; nginx's client_body_timeout and send_timeout). When that
//   Timeout leaves the handler, the server closes the connection quietly and counts it in
//   timed_out(): it is not a greenlet failure and is not reported.
// - evict_when_full: a client sending one byte a second never waits 60 s, so a timeout alone
//   lets such clients hold every handler. When all `concurrency` handlers are busy and another
//   connection has been accepted, the server kills (GreenletExit) the handler of the oldest
//   connection that is blocked in recv on its stream, waiting for its client, and counts it in
//   evicted(), as nginx reuses its oldest idle keep-alive connection when it runs out. If no
//   handler waits on its client, the new connection waits for a free handler, as without
//   eviction (so with eviction on, one accepted connection may wait beyond `concurrency`). A
//   handler that moves its Stream elsewhere is never evicted.
// A handler's own timeouts win: recv(n, 10s) waits 10 s whatever idle_timeout is, and a Timeout
// from it, or from a TimeoutScope, that leaves the handler is reported as a failure, as before.
class StreamServer {
 public:
  // Options configures a server; the defaults bound slow clients (see above).
  struct Options {
    // concurrency is how many handlers may run at once (at least 1).
    std::size_t concurrency = 1000;
    // idle_timeout is each accepted stream's timeout: how long one recv or send may wait on the
    // client. Positive, or std::nullopt for no limit.
    std::optional<Duration> idle_timeout = std::chrono::seconds(60);
    // evict_when_full lets a new connection take the handler of the oldest connection that is
    // waiting for its client when every handler is busy.
    bool evict_when_full = true;
  };

  // StreamServer(listener, handler, concurrency) uses the default Options with that concurrency.
  // Throws UsageError for a concurrency of 0.
  StreamServer(Listener listener, std::function<void(Stream&)> handler,
               std::size_t concurrency = 1000);
  // StreamServer(listener, handler, options) throws UsageError for a concurrency of 0 or an
  // idle_timeout that is not positive.
  StreamServer(Listener listener, std::function<void(Stream&)> handler, Options options);
  ~StreamServer();
  // start() spawns the accept loop and returns; serve_forever() runs it in the caller.
  void start();
  void serve_forever();
  void stop(std::optional<Duration> timeout = std::nullopt);
  Address address() const { return address_; }
  // handled() counts connections handed to the handler so far.
  std::size_t handled() const noexcept;
  // timed_out() counts connections closed because a recv or send waited idle_timeout.
  std::size_t timed_out() const noexcept;
  // evicted() counts handlers killed to make room for a new connection (evict_when_full).
  std::size_t evicted() const noexcept;
  // options() is what the server was made with.
  const Options& options() const noexcept;

 private:
  struct State;
  static void accept_loop(const std::shared_ptr<State>& state);
  static bool evict_one(State& state);
  std::shared_ptr<State> state_;
  Address address_;
};

}  // namespace tendril
