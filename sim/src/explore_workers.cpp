// SPDX-License-Identifier: Apache-2.0
// explore_workers.cpp: worker processes for explore() (see explore_workers.hpp).
#include "explore_workers.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <vector>

namespace tendril::detail {
namespace {

// Shared lives in a MAP_SHARED mapping that every worker inherits: the next index to claim, the
// lowest failing index reported so far, the interrupt flag, and what each worker is running.
struct Shared {
  static constexpr std::uint64_t idle = UINT64_MAX;
  std::atomic<std::uint64_t> next{0};
  std::atomic<std::uint64_t> stop_at{UINT64_MAX};
  std::atomic<std::uint32_t> interrupted{0};
  std::atomic<std::uint64_t> running[max_workers];  // idle, or the schedule a worker is in
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the shared counters must work across processes");

void lower_to(std::atomic<std::uint64_t>& a, std::uint64_t v) noexcept {
  std::uint64_t now = a.load();
  while (v < now && !a.compare_exchange_weak(now, v)) {
  }
}

// Messages from a worker, each a tag byte and fixed fields, then text; a worker buffers them
// and writes them a chunk of schedules at a time (or at once after a failure):
//   'D' index hash greenlets length text       a schedule ran (text: its failure, or empty)
//   'E' length text                            the worker failed outside any run
void put64(std::string& out, std::uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }

bool write_all(int fd, const std::string& data) noexcept {
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

[[noreturn]] void worker_main(unsigned w, int fd, Shared& shared, std::uint64_t count,
                              const std::function<void()>& setup,
                              const std::function<bool(std::uint64_t)>& wanted,
                              const std::function<WorkerRun(std::uint64_t)>& run,
                              const std::function<bool()>& interrupted) {
  // Indices are claimed a chunk at a time: one atomic operation and one write per chunk, not
  // per schedule; small explorations take one at a time, so that all workers get some.
  const std::uint64_t chunk = std::clamp<std::uint64_t>(count / 64, 1, 16);
  int status = 0;
  std::string out;
  try {
    setup();
    bool stop = false;
    while (!stop) {
      const std::uint64_t from = shared.next.fetch_add(chunk);
      if (from >= count) break;
      const std::uint64_t to = std::min(count, from + chunk);
      for (std::uint64_t k = from; k < to; ++k) {
        if (interrupted()) shared.interrupted.store(1);
        stop = shared.interrupted.load() != 0 || k > shared.stop_at.load();
        if (stop) break;
        if (!wanted(k)) continue;  // another shard's
        shared.running[w].store(k);
        const WorkerRun r = run(k);
        out += 'D';
        put64(out, k);
        put64(out, r.hash);
        put64(out, r.greenlets);
        put64(out, r.failure.size());
        out += r.failure;
        shared.running[w].store(Shared::idle);
        if (!r.failure.empty()) {
          lower_to(shared.stop_at, k);
          stop = true;
          break;
        }
      }
      if (!write_all(fd, out)) break;
      out.clear();
    }
  } catch (const std::exception& e) {
    out += 'E';
    const std::string what = std::string("an exception outside any run: ") + e.what();
    put64(out, what.size());
    write_all(fd, out + what);
    status = 3;
  } catch (...) {
    out += 'E';
    const std::string what = "an exception of unknown type outside any run";
    put64(out, what.size());
    write_all(fd, out + what);
    status = 3;
  }
  std::fflush(nullptr);  // what the body printed (this process's buffers were empty at fork)
  ::_exit(status);       // no atexit handlers, no static destructors: they are the parent's
}

// Reader parses one worker's messages as they arrive.
struct Reader {
  pid_t pid = -1;
  int fd = -1;
  std::string buffer;
  std::string error;  // an 'E' message

  static std::uint64_t get64(const std::string& b, std::size_t at) {
    std::uint64_t v = 0;
    std::memcpy(&v, b.data() + at, 8);
    return v;
  }
  // parse() consumes the complete messages in the buffer.
  void parse(WorkerOutcome& out, Shared& shared,
             const std::function<void(const WorkerRun&)>& progress) {
    std::size_t at = 0;
    for (;;) {
      const std::size_t left = buffer.size() - at;
      if (left == 0) break;
      const char tag = buffer[at];
      if (tag == 'D') {
        if (left < 33) break;
        const std::uint64_t length = get64(buffer, at + 25);
        if (left < 33 + length) break;
        const std::uint64_t k = get64(buffer, at + 1);
        WorkerRun r{get64(buffer, at + 9), get64(buffer, at + 17), buffer.substr(at + 33, length)};
        if (!r.failure.empty()) lower_to(shared.stop_at, k);
        if (progress) progress(r);
        out.runs[k] = std::move(r);
        at += 33 + length;
      } else {  // 'E'
        if (left < 9) break;
        const std::uint64_t length = get64(buffer, at + 1);
        if (left < 9 + length) break;
        error = buffer.substr(at + 9, length);
        at += 9 + length;
      }
    }
    buffer.erase(0, at);
  }
};

std::string how_it_ended(int status) {
  char text[160];
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    std::snprintf(text, sizeof text, "signal %d (%s)", sig, name != nullptr ? name : "?");
  } else if (WIFEXITED(status)) {
    std::snprintf(text, sizeof text, "exit status %d", WEXITSTATUS(status));
  } else {
    std::snprintf(text, sizeof text, "wait status %d", status);
  }
  return text;
}

}  // namespace

unsigned cpu_count() noexcept {
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
#endif
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 1;
}

unsigned thread_count() noexcept {
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return 1;
  unsigned n = 0;
  while (const dirent* e = ::readdir(dir)) n += e->d_name[0] != '.' ? 1 : 0;
  ::closedir(dir);
  return n == 0 ? 1 : n;
}

WorkerOutcome run_in_workers(unsigned jobs, std::uint64_t count, const std::function<void()>& setup,
                             const std::function<bool(std::uint64_t)>& wanted,
                             const std::function<WorkerRun(std::uint64_t)>& run,
                             const std::function<bool()>& interrupted,
                             const std::function<void(const WorkerRun&)>& progress) {
  WorkerOutcome out;
  void* page =
      ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return out;  // no workers: the caller runs the schedules itself
  Shared& shared = *new (page) Shared;
  for (auto& r : shared.running) r.store(Shared::idle);
  std::fflush(nullptr);  // a worker must not print what this process had buffered
  std::vector<Reader> readers;
  const pid_t parent = ::getpid();
  for (unsigned w = 0; w < std::min(jobs, max_workers); ++w) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) break;
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      break;
    }
    if (pid == 0) {
#ifdef __linux__
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // the exploring process is gone: so is its worker
      if (::getppid() != parent) ::_exit(4);
#endif
      for (const Reader& r : readers) ::close(r.fd);
      ::close(fds[0]);
      worker_main(w, fds[1], shared, count, setup, wanted, run, interrupted);
    }
    ::close(fds[1]);
    readers.push_back(Reader{pid, fds[0], {}, {}});
  }
  out.workers = static_cast<unsigned>(readers.size());

  std::size_t open = readers.size();
  std::vector<pollfd> polls;
  char chunk[65536];
  while (open > 0) {
    if (interrupted()) shared.interrupted.store(1);
    polls.clear();
    for (const Reader& r : readers) {
      if (r.fd >= 0) polls.push_back(pollfd{r.fd, POLLIN, 0});
    }
    const int ready = ::poll(polls.data(), polls.size(), 200);
    if (ready <= 0) continue;  // a timeout or EINTR: look at the interrupt flag again
    for (const pollfd& p : polls) {
      if (p.revents == 0) continue;
      for (Reader& r : readers) {
        if (r.fd != p.fd) continue;
        const ssize_t n = ::read(r.fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) break;
        if (n > 0) {
          r.buffer.append(chunk, static_cast<std::size_t>(n));
          r.parse(out, shared, progress);
          break;
        }
        ::close(r.fd);  // the end of this worker's reports
        r.fd = -1;
        --open;
        const std::uint64_t was = shared.running[&r - readers.data()].load();
        if (was != Shared::idle) lower_to(shared.stop_at, was);  // it died during a schedule
        break;
      }
    }
  }
  for (std::size_t w = 0; w < readers.size(); ++w) {
    const Reader& r = readers[w];
    int status = 0;
    while (::waitpid(r.pid, &status, 0) < 0 && errno == EINTR) {
    }
    const std::uint64_t was = shared.running[w].load();
    if (was == Shared::idle && r.error.empty() && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      continue;
    }
    const std::string how = "worker process " + std::to_string(r.pid) + " ended with " +
                            how_it_ended(status) + (r.error.empty() ? "" : ": " + r.error);
    if (was == Shared::idle) {  // outside any schedule
      if (out.broken.empty()) out.broken = how;
      continue;
    }
    if (!out.died_at || was < *out.died_at) {
      out.died_at = was;
      out.death = how;
    }
  }
  out.interrupted = shared.interrupted.load() != 0;
  shared.~Shared();
  ::munmap(page, sizeof(Shared));
  return out;
}

}  // namespace tendril::detail
