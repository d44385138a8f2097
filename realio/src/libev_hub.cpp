// SPDX-License-Identifier: Apache-2.0
// libev_hub.cpp: the real hub on libev. The only file of tendril that includes <ev.h>.
#include <arpa/inet.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tendril/realio.hpp"

namespace tendril {

namespace {

// IoState is what waits on file descriptors share with the loop: the hub owns it, the streams
// and listeners of its backend point to it.
struct IoState {
  struct ev_loop* loop = nullptr;
  std::size_t waits = 0;  // greenlets waiting on a file descriptor: they keep the loop running
};

// IoWait is one wait on a file descriptor in one direction: the watcher and the greenlet's token.
struct IoWait {
  ev_io watcher;  // first member: the watcher pointer is the IoWait pointer
  WaitToken token;
};

// io_ready() tells the hub's observer (a tracer) that the fd a wait is on became ready, then ends
// the wait.
void io_ready(const WaitToken& token, int revents) {
  if (Observer* o = token.greenlet->hub().observer(); o != nullptr) {
    const bool r = (revents & EV_READ) != 0, w = (revents & EV_WRITE) != 0;
    o->on_io(token.greenlet, r && w ? "readable+writable" : r ? "readable" : "writable");
  }
  Hub::wake_now(token);
}

void on_io(struct ev_loop*, ev_io* w, int revents) {
  io_ready(reinterpret_cast<IoWait*>(w)->token, revents);
}

// wait_io() parks the calling greenlet until the descriptor of wait's watcher (initialised by
// the caller) is ready, or deadline_ns passes (returns false); the watcher is stopped again
// before it returns, however the wait ends.
bool wait_io(Hub& hub, IoState& io, IoWait& wait, std::optional<std::int64_t> deadline_ns,
             const char* reason) {
  wait.token = hub.begin_wait(reason);
  ev_io_start(io.loop, &wait.watcher);
  ++io.waits;
  struct Stop {
    IoState& io;
    ev_io* w;
    ~Stop() {
      ev_io_stop(io.loop, w);
      --io.waits;
    }
  } stop{io, &wait.watcher};
  return hub.park(wait.token, reason, nullptr, deadline_ns);
}

}  // namespace

struct LibevHub::Impl {
  // Timers live in tendril's own queues, ordered by (deadline, arming id), so that equal
  // deadlines fire in arming order whatever the clock's resolution; libev gets one watcher per
  // priority, armed for the earliest deadline of its queue (a low-priority timer runs after
  // everything else due in the same loop iteration, as a libev priority -1 watcher).
  struct Timer {
    std::int64_t deadline_ns;
    TimerPriority priority;
    Callback cb;
  };
  struct TimerQueue {
    ev_timer watcher;  // first member: the watcher pointer is the TimerQueue pointer
    Impl* impl;
    std::set<std::pair<std::int64_t, TimerId>> due;  // (deadline, id)
  };
  struct Signal {
    ev_signal watcher;  // first member, as Timer
    LibevHub* hub;
    std::function<void()> handler;
  };

  LibevHub* hub;
  struct ev_loop* loop = nullptr;
  double start = 0;
  std::uint64_t rng;
  TimerId next_id = 1;
  std::map<TimerId, Timer> timers;  // by id: ordered, so teardown is deterministic
  TimerQueue queues[2];             // [0] normal, [1] low priority
  std::vector<std::unique_ptr<Signal>> signals;

  // Cross-thread posts: filled by any thread, drained on the hub's thread by the async watcher.
  ev_async async;
  mutable std::mutex inbox_mutex;
  std::vector<std::function<void()>> inbox;
  std::size_t keep_alives = 0;  // KeepAlive tokens counted in (hub thread only)
  std::atomic<std::size_t> keep_alives_released{0};  // dropped since, on any thread

  // The blocking-call pool: threads start on demand (a job finding none free) up to max_threads,
  // and stay until the hub is destroyed. `threads` is touched on the hub's thread only.
  unsigned max_threads;
  std::vector<std::thread> threads;
  std::mutex jobs_mutex;
  std::condition_variable jobs_ready;
  std::deque<std::function<void()>> jobs;  // guarded by jobs_mutex, as busy and stopping
  std::size_t busy = 0;  // workers between taking a job and its work's end (before its post)
  bool stopping = false;
  std::size_t outstanding = 0;  // blocking calls not yet finished (hub thread only)
  IoState io;
  std::unique_ptr<net::Backend> backend;

  TimerQueue& queue_of(TimerPriority priority) {
    return queues[priority == TimerPriority::low ? 1 : 0];
  }

  // arm() points q's libev watcher at its earliest deadline (or stops it when q is empty).
  void arm(TimerQueue& q) {
    ev_timer_stop(loop, &q.watcher);
    if (q.due.empty()) return;
    const std::int64_t now = cached_now_ns();
    const std::int64_t first = q.due.begin()->first;
    ev_timer_set(&q.watcher, first <= now ? 0.0 : static_cast<double>(first - now) / 1e9, 0.0);
    ev_timer_start(loop, &q.watcher);
  }

  std::int64_t cached_now_ns() const {
    return static_cast<std::int64_t>((ev_now(loop) - start) * 1e9);
  }

  // fire() runs the queue's due timers in (deadline, arming) order. As gevent on libev: a
  // greenlet woken by a timer runs right here, before the next due timer; callbacks it queues
  // run after all due timers, in the next turn. Timers armed meanwhile wait for the next
  // iteration (libev collects the expired ones before running any), and one cancelled meanwhile
  // does not run.
  static void fire(struct ev_loop*, ev_timer* w, int) {
    auto& q = *reinterpret_cast<TimerQueue*>(w);
    Impl* impl = q.impl;
    const std::int64_t now = impl->cached_now_ns();
    const TimerId armed_before = impl->next_id;
    for (;;) {
      auto it = q.due.begin();
      while (it != q.due.end() && it->first <= now && it->second >= armed_before) ++it;
      if (it == q.due.end() || it->first > now) break;
      const TimerId id = it->second;
      q.due.erase(it);
      auto t = impl->timers.find(id);
      Callback cb = t->second.cb;
      impl->timers.erase(t);
      cb.invoke();
    }
    impl->arm(q);
  }

  static void on_async(struct ev_loop*, ev_async* w, int) {
    auto* impl = static_cast<Impl*>(w->data);
    std::vector<std::function<void()>> posted;
    {
      std::lock_guard<std::mutex> lock(impl->inbox_mutex);
      posted.swap(impl->inbox);
    }
    for (auto& fn : posted) impl->hub->schedule(Callback::from_function(std::move(fn)));
  }

  static void on_signal(struct ev_loop*, ev_signal* w, int) {
    auto* s = reinterpret_cast<Signal*>(w);
    s->hub->schedule(Callback::from_function(s->handler));
  }

  void worker() {
    std::unique_lock<std::mutex> lock(jobs_mutex);
    for (;;) {
      jobs_ready.wait(lock, [this] { return stopping || !jobs.empty(); });
      if (stopping) return;
      std::function<void()> job = std::move(jobs.front());
      jobs.pop_front();
      ++busy;  // the job counts itself out when its work ends (work_done)
      lock.unlock();
      job();
      job = nullptr;  // what it holds is freed outside the lock
      lock.lock();
    }
  }

  // work_done() is called by a job when its work has ended, before it posts its result: from then
  // on its thread counts as free, so a greenlet that resumes and calls again at once reuses it.
  void work_done() {
    std::lock_guard<std::mutex> lock(jobs_mutex);
    --busy;
  }

  // grow() starts one more worker when the job about to be queued would find no free thread (the
  // jobs already queued take one each) and the pool is below its size. Only a pool with no thread
  // at all must grow: a failure then is the caller's error; otherwise the job waits its turn.
  void grow() {
    {
      std::lock_guard<std::mutex> lock(jobs_mutex);
      if (jobs.size() + 1 <= threads.size() - busy || threads.size() >= max_threads) return;
    }
    try {
      threads.emplace_back([this] { worker(); });
    } catch (const std::system_error& e) {
      if (!threads.empty()) return;
      throw std::system_error(e.code(),
                              "tendril::blocking_call: LibevHub could not start a "
                              "thread for its blocking-call pool");
    }
  }
};

LibevHub::LibevHub(LibevOptions options) : Hub(HubOptions{options.stack}), impl_(new Impl) {
  impl_->hub = this;
  impl_->loop = ev_loop_new(EVFLAG_AUTO);
  if (impl_->loop == nullptr) {
    throw std::runtime_error("tendril::LibevHub: libev could not create a loop (ev_loop_new)");
  }
  impl_->io.loop = impl_->loop;
  ev_now_update(impl_->loop);
  impl_->start = ev_now(impl_->loop);
  impl_->rng = options.seed;
  impl_->max_threads = options.threads == 0 ? 1 : options.threads;
  for (int i = 0; i < 2; ++i) {
    Impl::TimerQueue& q = impl_->queues[i];
    q.impl = impl_.get();
    ev_timer_init(&q.watcher, &Impl::fire, 0.0, 0.0);
    ev_set_priority(&q.watcher, i == 0 ? 0 : -1);
  }
  ev_async_init(&impl_->async, &Impl::on_async);
  impl_->async.data = impl_.get();
  ev_async_start(impl_->loop, &impl_->async);
  ev_unref(impl_->loop);  // the async watcher alone does not keep the loop alive
}

LibevHub::~LibevHub() {
  // Posts never run are reported, not dropped silently (a thread posted after the last run()).
  if (const std::size_t left = posts_pending(); left > 0) {
    std::fprintf(stderr,
                 "tendril: LibevHub destroyed with %zu post%s from other threads never run (posted "
                 "after its last run() ended)\n",
                 left, left == 1 ? "" : "s");
  }
  {
    std::lock_guard<std::mutex> lock(impl_->jobs_mutex);
    impl_->stopping = true;
  }
  impl_->jobs_ready.notify_all();
  for (auto& t : impl_->threads) t.join();
  for (auto& q : impl_->queues) {
    ev_timer_stop(impl_->loop, &q.watcher);
    q.due.clear();
  }
  for (auto& [id, t] : impl_->timers) t.cb.discard();
  impl_->timers.clear();
  for (auto& s : impl_->signals) {
    ev_ref(impl_->loop);
    ev_signal_stop(impl_->loop, &s->watcher);
  }
  ev_ref(impl_->loop);
  ev_async_stop(impl_->loop, &impl_->async);
  discard_ready();
  ev_loop_destroy(impl_->loop);
}

std::int64_t LibevHub::now_ns() const {
  // Refreshed at every read, as gevent refreshes the loop's clock before arming a timer: a
  // deadline computed after a busy stretch counts from now, not from the iteration's start.
  ev_now_update(impl_->loop);
  return impl_->cached_now_ns();
}

TimerId LibevHub::start_timer(std::int64_t deadline_ns, Callback cb, TimerPriority priority) {
  const TimerId id = impl_->next_id++;
  impl_->timers.emplace(id, Impl::Timer{deadline_ns, priority, cb});
  Impl::TimerQueue& q = impl_->queue_of(priority);
  const bool earliest = q.due.empty() || std::pair{deadline_ns, id} < *q.due.begin();
  q.due.emplace(deadline_ns, id);
  if (earliest) impl_->arm(q);
  return id;
}

void LibevHub::cancel_timer(TimerId id) noexcept {
  auto it = impl_->timers.find(id);
  if (it == impl_->timers.end()) return;
  Impl::TimerQueue& q = impl_->queue_of(it->second.priority);
  const std::pair<std::int64_t, TimerId> key{it->second.deadline_ns, id};
  const bool earliest = *q.due.begin() == key;
  q.due.erase(key);
  Callback cb = it->second.cb;
  impl_->timers.erase(it);
  if (earliest) impl_->arm(q);
  cb.discard();
}

std::uint32_t LibevHub::choose(std::uint32_t n) {
  if (n <= 1) return 0;
  // splitmix64 with rejection, as Random: seeded, the same on every platform.
  const std::uint64_t threshold = (std::uint64_t{1} << 32) % n;
  for (;;) {
    std::uint64_t z = (impl_->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    const std::uint64_t m = ((z ^ (z >> 31)) >> 32) * n;
    if ((m & 0xffffffffULL) >= threshold) return static_cast<std::uint32_t>(m >> 32);
  }
}

std::string LibevHub::position() const {
  char text[96];
  std::snprintf(text, sizeof text, "libev time %.6f s, step %llu",
                static_cast<double>(now_ns()) / 1e9, static_cast<unsigned long long>(steps()));
  return text;
}

std::size_t LibevHub::pending_timers() const noexcept { return impl_->timers.size(); }

void LibevHub::post_threadsafe(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(impl_->inbox_mutex);
    impl_->inbox.push_back(std::move(fn));
  }
  ev_async_send(impl_->loop, &impl_->async);  // libev's one thread-safe call
}

std::size_t LibevHub::posts_pending() const {
  std::lock_guard<std::mutex> lock(impl_->inbox_mutex);
  return impl_->inbox.size();
}

LibevHub::KeepAlive LibevHub::keep_alive() {
  if (current_hub_or_null() != nullptr && current_hub_or_null() != this) {
    throw UsageError("tendril::LibevHub::keep_alive: call it on the hub's own thread");
  }
  // The async watcher was unref'd so that it alone does not keep the loop alive; while someone
  // promises a post, it does.
  if (impl_->keep_alives++ == 0) ev_ref(impl_->loop);
  return KeepAlive(this);
}

void LibevHub::release_keep_alive() noexcept {
  // On the hub's thread: take in the tokens dropped anywhere since the last look.
  for (std::size_t n = impl_->keep_alives_released.exchange(0); n > 0; --n) {
    if (--impl_->keep_alives == 0) ev_unref(impl_->loop);
  }
}

LibevHub::KeepAlive& LibevHub::KeepAlive::operator=(KeepAlive&& other) noexcept {
  if (this != &other) {
    KeepAlive old(std::move(*this));
    hub_ = std::exchange(other.hub_, nullptr);
  }
  return *this;
}

LibevHub::KeepAlive::~KeepAlive() {
  if (hub_ == nullptr) return;
  // Counted here, taken in by the hub's thread (ev_unref is not thread-safe); the async send
  // wakes a loop that waits, libev's one thread-safe call.
  hub_->impl_->keep_alives_released.fetch_add(1);
  ev_async_send(hub_->impl_->loop, &hub_->impl_->async);
}

void LibevHub::run_blocking(const std::function<void()>& work) {
  Greenlet* me = current();
  if (me == nullptr) detail::throw_not_in_greenlet("tendril::blocking_call");
  impl_->grow();
  // The job is made and freed on the hub's thread; the worker touches only `work` and `error`
  // (greenlet refcounts are not atomic, so no Ref crosses threads).
  struct Job {
    const std::function<void()>* work;
    std::exception_ptr error;
    WaitToken token;
    bool finished = false;
  };
  Job job{&work, nullptr, begin_wait("tendril::blocking_call"), false};
  Job* job_ptr = &job;
  if (impl_->outstanding++ == 0) ev_ref(impl_->loop);  // a pending call keeps the loop waiting
  {
    std::lock_guard<std::mutex> lock(impl_->jobs_mutex);
    impl_->jobs.push_back([this, job_ptr] {
      try {
        (*job_ptr->work)();
      } catch (...) {
        job_ptr->error = std::current_exception();
      }
      impl_->work_done();
      post_threadsafe([this, job_ptr] {
        if (--impl_->outstanding == 0) ev_unref(impl_->loop);
        job_ptr->finished = true;
        Hub::wake_now(job_ptr->token);
      });
    });
  }
  impl_->jobs_ready.notify_one();
  try {
    park(job.token, "blocking_call", nullptr);
  } catch (...) {
    // Killed (or timed out) while the work runs: the work writes into this stack, so wait for it
    // to finish before unwinding, then raise what interrupted us.
    const std::exception_ptr interrupted = std::current_exception();
    while (!job.finished) {
      job.token = begin_wait("tendril::blocking_call");
      try {
        park(job.token, "blocking_call (finishing after an interruption)", nullptr);
      } catch (const boost::context::detail::forced_unwind&) {
        throw;  // never swallow Boost.Context's unwinding
      } catch (...) {
      }
    }
    std::rethrow_exception(interrupted);
  }
  if (job.error) std::rethrow_exception(job.error);
}

bool LibevHub::wait_fd(int fd, int events, std::optional<std::int64_t> deadline_ns,
                       const char* reason) {
  IoWait wait;
  ev_io_init(&wait.watcher, on_io, fd, events);
  return wait_io(*this, impl_->io, wait, deadline_ns, reason);
}

bool LibevHub::wait_fds(const std::vector<std::pair<int, int>>& fds,
                        std::optional<std::int64_t> deadline_ns, const char* reason) {
  WaitToken token = begin_wait(reason);
  // One watcher per pair, all waking the same wait; the vector never reallocates once started.
  std::vector<ev_io> watchers(fds.size());
  for (std::size_t i = 0; i < fds.size(); ++i) {
    ev_io_init(
        &watchers[i],
        [](struct ev_loop*, ev_io* w, int revents) {
          io_ready(*static_cast<WaitToken*>(w->data), revents);
        },
        fds[i].first, fds[i].second);
    watchers[i].data = &token;
    ev_io_start(impl_->loop, &watchers[i]);
  }
  // An empty wait is kept alive by its deadline's timer alone, so that a wait with neither is a
  // deadlock rather than a loop blocked forever.
  if (!fds.empty()) ++impl_->io.waits;
  struct Stop {
    LibevHub::Impl* impl;
    std::vector<ev_io>& watchers;
    ~Stop() {
      for (ev_io& w : watchers) ev_io_stop(impl->loop, &w);
      if (!watchers.empty()) --impl->io.waits;
    }
  } stop{impl_.get(), watchers};
  return park(token, reason, nullptr, deadline_ns);
}

namespace {

// errno to std::system_error, in one place (libev's syserr funnel).
[[noreturn]] void syserr(const std::string& what, int err = errno) {
  throw std::system_error(err, std::generic_category(), "tendril: " + what);
}

std::optional<std::int64_t> deadline_of(Hub& hub, std::optional<Duration> timeout,
                                        const char* api) {
  if (!timeout) return std::nullopt;
  if (*timeout < Duration::zero()) {
    throw UsageError(std::string(api) + ": negative timeout");
  }
  return hub.now_ns() + timeout->count();
}

Address address_of(const sockaddr_storage& sa) {
  char host[INET6_ADDRSTRLEN] = {0};
  Address a;
  if (sa.ss_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&sa);
    ::inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
    a.port = ntohs(s6->sin6_port);
  } else {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(&sa);
    ::inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
    a.port = ntohs(s4->sin_port);
  }
  a.host = host;
  return a;
}

// lookup() looks a host up on the blocking-call pool (getaddrinfo has no cooperative form).
sockaddr_storage lookup(const Address& at, socklen_t* len, int flags) {
  sockaddr_storage out{};
  blocking_call([&] {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | flags;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(at.port);
    const int rc =
        ::getaddrinfo(at.host.empty() ? nullptr : at.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0 || res == nullptr) {
      throw std::system_error(
          EHOSTUNREACH, std::generic_category(),
          "tendril: cannot resolve " + at.to_string() + ": " + ::gai_strerror(rc));
    }
    std::memcpy(&out, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    ::freeaddrinfo(res);
  });
  return out;
}

// FdWaits keeps one watcher per direction for one open descriptor, initialised once. Each
// ev_io_init tells libev the descriptor may be a new one, and libev then registers it with epoll
// again (a failing EPOLL_CTL_ADD per wait); a watcher started again for the same descriptor and
// direction lets libev leave the registration as it is. A second greenlet waiting in a direction
// that is already waited on gets a watcher of its own (LibevHub::wait_fd).
class FdWaits {
 public:
  FdWaits(LibevHub& hub, IoState& io, int fd) : hub_(hub), io_(io) {
    ev_io_init(&read_.watcher, on_io, fd, EV_READ);
    ev_io_init(&write_.watcher, on_io, fd, EV_WRITE);
  }
  FdWaits(const FdWaits&) = delete;
  FdWaits& operator=(const FdWaits&) = delete;
  // wait() parks the calling greenlet until the descriptor is ready for events (EV_READ or
  // EV_WRITE) or deadline_ns passes (returns false).
  bool wait(int events, std::optional<std::int64_t> deadline_ns, const char* reason) {
    IoWait& mine = events == EV_READ ? read_ : write_;
    if (ev_is_active(&mine.watcher)) {
      return hub_.wait_fd(mine.watcher.fd, events, deadline_ns, reason);
    }
    return wait_io(hub_, io_, mine, deadline_ns, reason);
  }

 private:
  LibevHub& hub_;
  IoState& io_;
  IoWait read_;
  IoWait write_;
};

class FdStream final : public net::StreamImpl {
 public:
  FdStream(LibevHub& hub, IoState& io, int fd, Address peer)
      : hub_(hub), fd_(fd), peer_(std::move(peer)), waits_(hub, io, fd) {}
  ~FdStream() override { close(); }
  std::size_t recv(char* buf, std::size_t n, std::optional<Duration> timeout) override {
    const auto deadline = deadline_of(hub_, timeout, "tendril::Stream::recv");
    for (;;) {
      const ssize_t got = ::recv(fd_, buf, n, 0);
      if (got >= 0) return static_cast<std::size_t>(got);
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) syserr("recv from " + peer_.to_string());
      if (!waits_.wait(EV_READ, deadline, "Stream.recv")) throw Timeout();
    }
  }
  std::size_t send(const char* buf, std::size_t n, std::optional<Duration> timeout) override {
    const auto deadline = deadline_of(hub_, timeout, "tendril::Stream::send");
    for (;;) {
      const ssize_t sent = ::send(fd_, buf, n, MSG_NOSIGNAL);
      if (sent >= 0) return static_cast<std::size_t>(sent);
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) syserr("send to " + peer_.to_string());
      if (!waits_.wait(EV_WRITE, deadline, "Stream.send")) throw Timeout();
    }
  }
  void shutdown(net::Shutdown how) override {
    const int h = how == net::Shutdown::read    ? SHUT_RD
                  : how == net::Shutdown::write ? SHUT_WR
                                                : SHUT_RDWR;
    if (::shutdown(fd_, h) != 0 && errno != ENOTCONN) syserr("shutdown of " + peer_.to_string());
  }
  void close() noexcept override {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }
  Address peer() const override { return peer_; }
  int fd() const noexcept { return fd_; }

 private:
  LibevHub& hub_;
  int fd_;
  Address peer_;
  FdWaits waits_;
};

class FdListener final : public net::ListenerImpl {
 public:
  FdListener(LibevHub& hub, IoState& io, int fd, Address at)
      : hub_(hub), io_(io), fd_(fd), at_(std::move(at)), waits_(hub, io, fd) {}
  ~FdListener() override { close(); }
  std::unique_ptr<net::StreamImpl> accept(std::optional<Duration> timeout) override {
    const auto deadline = deadline_of(hub_, timeout, "tendril::Listener::accept");
    for (;;) {
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      const int fd =
          ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return std::make_unique<FdStream>(hub_, io_, fd, address_of(peer));
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: back off instead of spinning on a readable listener.
        sleep(std::chrono::milliseconds(100));
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) syserr("accept on " + at_.to_string());
      if (!waits_.wait(EV_READ, deadline, "Listener.accept")) throw Timeout();
    }
  }
  Address address() const override { return at_; }
  void close() noexcept override {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }

 private:
  LibevHub& hub_;
  IoState& io_;
  int fd_;
  Address at_;
  FdWaits waits_;
};

class LibevBackend final : public net::Backend {
 public:
  LibevBackend(LibevHub& hub, IoState& io) : hub_(hub), io_(io) {}
  std::unique_ptr<net::ListenerImpl> listen(const Address& at, int backlog) override {
    socklen_t len = 0;
    const sockaddr_storage sa = lookup(at, &len, AI_PASSIVE);
    const int fd = ::socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) syserr("socket for " + at.to_string());
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), len) != 0 ||
        ::listen(fd, backlog) != 0) {
      const int err = errno;
      ::close(fd);
      syserr("listen on " + at.to_string(), err);
    }
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
    return std::make_unique<FdListener>(hub_, io_, fd, address_of(bound));
  }
  std::unique_ptr<net::StreamImpl> connect(const Address& to,
                                           std::optional<Duration> timeout) override {
    const auto deadline = deadline_of(hub_, timeout, "tendril::connect");
    socklen_t len = 0;
    const sockaddr_storage sa = lookup(to, &len, 0);
    const int fd = ::socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) syserr("socket for " + to.to_string());
    auto stream = std::make_unique<FdStream>(hub_, io_, fd, to);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), len) != 0) {
      if (errno != EINPROGRESS) syserr("connect to " + to.to_string());
      if (!hub_.wait_fd(fd, EV_WRITE, deadline, "connect")) throw Timeout();
      int err = 0;
      socklen_t elen = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
      if (err != 0) syserr("connect to " + to.to_string(), err);
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return stream;
  }
  net::Selected select(const std::vector<net::StreamImpl*>& readable,
                       const std::vector<net::StreamImpl*>& writable,
                       std::optional<Duration> timeout) override {
    const auto deadline = deadline_of(hub_, timeout, "tendril::select");
    std::vector<std::pair<int, int>> fds;
    fds.reserve(readable.size() + writable.size());
    auto add = [&](const std::vector<net::StreamImpl*>& streams, int events) {
      for (net::StreamImpl* s : streams) {
        auto* fs = dynamic_cast<FdStream*>(s);
        if (fs == nullptr) throw UsageError("tendril::select: a stream of another hub's network");
        fds.emplace_back(fs->fd(), events);
      }
    };
    add(readable, EV_READ);
    add(writable, EV_WRITE);
    return wait_any(fds, readable.size(), deadline, "tendril::select", "select");
  }
  int green_wait(const std::pair<int, int>* fds, std::size_t n, std::optional<Duration> timeout,
                 const char* reason) override {
    const auto deadline = deadline_of(hub_, timeout, "tendril::green");
    GreenWait wait;
    wait.token = hub_.begin_wait(reason);
    // One watcher per pair, all ending the same wait (as LibevHub::wait_fds), each entered in
    // green_waits_ so that green_closing() finds it.
    ev_io one;
    std::vector<ev_io> many(n > 1 ? n : 0);
    ev_io* watchers = n > 1 ? many.data() : &one;
    for (std::size_t i = 0; i < n; ++i) {
      const int events =
          ((fds[i].second & 1) != 0 ? EV_READ : 0) | ((fds[i].second & 2) != 0 ? EV_WRITE : 0);
      ev_io_init(
          &watchers[i],
          [](struct ev_loop*, ev_io* w, int revents) {
            io_ready(*static_cast<WaitToken*>(w->data), revents);
          },
          fds[i].first, events);
      watchers[i].data = &wait.token;
    }
    struct Stop {
      LibevBackend& self;
      ev_io* watchers;
      std::size_t started = 0;
      GreenWait* wait;
      ~Stop() {
        for (std::size_t i = 0; i < started; ++i) {
          ev_io_stop(self.io_.loop, &watchers[i]);
          auto [from, to] = self.green_waits_.equal_range(watchers[i].fd);
          for (auto it = from; it != to; ++it) {
            if (it->second == wait) {
              self.green_waits_.erase(it);
              break;
            }
          }
        }
        if (started != 0) --self.io_.waits;
      }
    } stop{*this, watchers, 0, &wait};
    for (std::size_t i = 0; i < n; ++i) {
      green_waits_.emplace(fds[i].first, &wait);
      ev_io_start(io_.loop, &watchers[i]);
      if (stop.started++ == 0) ++io_.waits;
    }
    const bool woken = hub_.park(wait.token, reason, nullptr, deadline);
    if (wait.closed) return -2;
    return woken ? 1 : 0;
  }
  void green_closing(int fd) override {
    auto [from, to] = green_waits_.equal_range(fd);
    for (auto it = from; it != to; ++it) {
      if (it->second->closed) continue;
      it->second->closed = true;
      hub_.schedule(Hub::wake_callback(it->second->token));
    }
  }
  net::Selected select_fds(const std::vector<int>& readable, const std::vector<int>& writable,
                           std::optional<Duration> timeout) override {
    const auto deadline = deadline_of(hub_, timeout, "tendril::select_fds");
    std::vector<std::pair<int, int>> fds;
    fds.reserve(readable.size() + writable.size());
    for (int fd : readable) fds.emplace_back(fd, EV_READ);
    for (int fd : writable) fds.emplace_back(fd, EV_WRITE);
    return wait_any(fds, readable.size(), deadline, "tendril::select_fds", "select_fds");
  }

 private:
  // wait_any() waits until one of fds (the first `readable` of them for reading) is ready or the
  // deadline passes, and returns the ready ones as indexes into their own lists.
  // api names the call in errors, reason the wait in reports.
  net::Selected wait_any(const std::vector<std::pair<int, int>>& fds, std::size_t readable,
                         std::optional<std::int64_t> deadline, const char* api,
                         const char* reason) {
    std::vector<pollfd> polled(fds.size());
    for (;;) {
      // Readiness is asked of the kernel (poll with no wait); libev only does the waiting.
      for (std::size_t i = 0; i < fds.size(); ++i) {
        polled[i] = {fds[i].first, static_cast<short>(fds[i].second == EV_READ ? POLLIN : POLLOUT),
                     0};
      }
      int rc;
      do {
        rc = ::poll(polled.data(), polled.size(), 0);
      } while (rc < 0 && errno == EINTR);
      if (rc < 0) syserr(std::string("poll in ") + api);
      net::Selected out;
      for (std::size_t i = 0; i < fds.size(); ++i) {
        if (polled[i].revents == 0) continue;
        if (polled[i].revents & POLLNVAL) {
          // A descriptor that is not open: gevent's select raises OSError(EBADF) too.
          syserr(std::string(api) + ": fd " + std::to_string(fds[i].first), EBADF);
        }
        if (i < readable) {
          out.readable.push_back(i);
        } else {
          out.writable.push_back(i - readable);
        }
      }
      if (!out.empty()) return out;
      if (!hub_.wait_fds(fds, deadline, reason)) return out;
    }
  }

  // GreenWait is one green_wait(): its token, and whether green_closing() ended it.
  struct GreenWait {
    WaitToken token;
    bool closed = false;
  };

  LibevHub& hub_;
  IoState& io_;
  std::unordered_multimap<int, GreenWait*> green_waits_;  // by descriptor
};

}  // namespace

net::Backend& LibevHub::net() {
  if (!impl_->backend) impl_->backend = std::make_unique<LibevBackend>(*this, impl_->io);
  return *impl_->backend;
}

void LibevHub::signal_handler(int signum, std::function<void()> handler) {
  if (signum <= 0 || signum >= NSIG) {
    throw UsageError("tendril::LibevHub::signal_handler: invalid signal number " +
                     std::to_string(signum));
  }
  auto s = std::make_unique<Impl::Signal>();
  s->hub = this;
  s->handler = std::move(handler);
  // A signal inherited as ignored (a shell's background jobs ignore SIGINT) would never reach
  // libev; asking for a handler means wanting it.
  struct sigaction current {};
  if (::sigaction(signum, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) {
    ::signal(signum, SIG_DFL);
  }
  ev_signal_init(&s->watcher, &Impl::on_signal, signum);
  ev_signal_start(impl_->loop, &s->watcher);
  ev_unref(impl_->loop);  // gevent's signal watchers do not keep the loop alive either
  impl_->signals.push_back(std::move(s));
}

void LibevHub::run_loop() {
  for (;;) {
    if (stop_requested()) return;
    // 1. Callbacks until the queue is empty, including ones queued meanwhile (gevent).
    while (!ready_.empty()) {
      count_step();
      Callback cb = ready_.take(0);
      cb.invoke();
      if (stop_requested()) return;
    }
    // 2. Nothing ready. With no timer and no blocking call under way, nothing could ever make
    // anything ready: idle. Otherwise let libev fire what is due, or wait for it.
    release_keep_alive();
    if (impl_->timers.empty() && impl_->outstanding == 0 && impl_->io.waits == 0 &&
        impl_->keep_alives == 0) {
      return;
    }
    ev_run(impl_->loop, EVRUN_ONCE);
  }
}

}  // namespace tendril
