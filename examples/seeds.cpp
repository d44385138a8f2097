// SPDX-License-Identifier: Apache-2.0
// seeds.cpp: the seed programs (see seeds.hpp).
#include "seeds.hpp"

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "tendril/explore.hpp"
#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

using namespace std::chrono_literals;

namespace seeds {
namespace {

std::string seconds(tendril::Duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", static_cast<double>(d.count()) / 1e9);
  return buf;
}

}  // namespace

void foo_bar(std::ostream& out, tendril::trace::Trace* trace) {
  tendril::SimHub hub;
  std::optional<tendril::trace::Tracer> tracer;
  if (trace != nullptr) tracer.emplace(hub, "foo_bar");
  tendril::run(hub, [&] {
    auto foo = tendril::spawn("foo", [&] {
      out << "Running in foo\n";
      tendril::sleep(0s);
      out << "Explicit context switch to foo again\n";
    });
    auto bar = tendril::spawn("bar", [&] {
      out << "Explicit context to bar\n";
      tendril::sleep(0s);
      out << "Implicit context switch back to bar\n";
    });
    tendril::joinall({foo, bar});
  });
  if (tracer) *trace = tracer->trace();
}

void producer_consumer(std::ostream& out, tendril::trace::Trace* trace) {
  tendril::SimHub hub;
  std::optional<tendril::trace::Tracer> tracer;
  if (trace != nullptr) tracer.emplace(hub, "producer_consumer");
  tendril::run(hub, [&] {
    tendril::Queue<std::string> jobs(1, "jobs");
    auto producer = tendril::spawn("producer", [&] {
      for (const char* job : {"a", "b", "c"}) {
        jobs.put(job);
        out << "put " << job << "\n";
      }
    });
    auto consumer = tendril::spawn("consumer", [&] {
      for (int i = 0; i < 3; ++i) {
        const std::string job = jobs.get();
        out << "got " << job << "\n";
      }
    });
    tendril::joinall({producer, consumer});
  });
  if (tracer) *trace = tracer->trace();
}

void sleepers(std::ostream& out) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    auto func = [&](const char* name, tendril::Duration d) {
      return tendril::spawn(name, [&out, name, d] {
        tendril::sleep(d);
        out << name << " done at " << seconds(tendril::now()) << "\n";
      });
    };
    tendril::joinall({func("func1", 3s), func("func2", 2s), func("func3", 2s)});
  });
}

namespace {

void task(std::ostream& out, int pid) {
  // gevent.sleep(random.randint(0, 2) * 0.001): the randomness comes from the hub.
  tendril::sleep(std::chrono::milliseconds(tendril::random_below(3)));
  out << "Task " << pid << " done\n";
}

}  // namespace

void tasks(std::ostream& out, std::uint64_t seed) {
  tendril::SimHub hub{tendril::Random{seed}};
  tendril::run(hub, [&] {
    out << "Synchronous:\n";
    for (int i = 1; i < 10; ++i) task(out, i);
    out << "Asynchronous:\n";
    std::vector<tendril::Ref<tendril::Greenlet>> threads;
    for (int i = 0; i < 10; ++i) threads.push_back(tendril::spawn(task, std::ref(out), i));
    tendril::joinall(threads);
  });
}

namespace {

// gevent's MyNoopGreenlet: a Greenlet subclass whose run() sleeps.
class MyNoopGreenlet : public tendril::Task<void> {
 public:
  explicit MyNoopGreenlet(tendril::Duration seconds)
      : Task("MyNoopGreenlet(" + seconds_text(seconds) + ")"), seconds_(seconds) {}

 protected:
  void run() override { tendril::sleep(seconds_); }

 private:
  static std::string seconds_text(tendril::Duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count());
  }
  tendril::Duration seconds_;
};

}  // namespace

void subclass(std::ostream& out) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    auto g = tendril::make_greenlet<MyNoopGreenlet>(4s);
    g->start();
    g->join();
    out << g->name() << " finished at " << seconds(tendril::now())
        << (g->successful() ? ", successful" : ", failed") << "\n";
  });
}

namespace {

// Actor is gevent's Actor: a greenlet with an inbox, running receive() for each message.
class Actor : public tendril::Task<void> {
 public:
  explicit Actor(std::string name) : Task(std::move(name)), inbox(0, this->name() + " inbox") {}
  tendril::Queue<std::string> inbox;

 protected:
  virtual void receive(const std::string& message) = 0;
  void run() override {
    while (running_) receive(inbox.get());
  }
  void stop() { running_ = false; }

 private:
  bool running_ = true;
};

// Pinger and Ponger answer each other until each has received `rounds` messages.
class PingPong : public Actor {
 public:
  PingPong(std::string name, std::string reply, std::ostream& out, int rounds)
      : Actor(std::move(name)), reply_(std::move(reply)), out_(out), left_(rounds) {}
  tendril::Ref<PingPong> peer;

 protected:
  void receive(const std::string& message) override {
    out_ << name() << " got " << message << "\n";
    if (--left_ == 0) stop();
    peer->inbox.put(reply_);
    tendril::sleep(tendril::Duration::zero());
  }

 private:
  std::string reply_;
  std::ostream& out_;
  int left_;
};

}  // namespace

void actors(std::ostream& out, int rounds) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    auto ping = tendril::make_greenlet<PingPong>("ping", "ping", out, rounds);
    auto pong = tendril::make_greenlet<PingPong>("pong", "pong", out, rounds);
    ping->peer = pong;
    pong->peer = ping;
    ping->start();
    pong->start();
    ping->inbox.put("start");
    tendril::joinall({ping, pong});
    ping->peer = nullptr;  // break the cycle
    pong->peer = nullptr;
  });
}

void two_spinners() {
  bool a_done = false;
  bool b_done = false;
  auto a = tendril::spawn("a", [&] {
    while (!b_done) tendril::sleep(0s);
    a_done = true;
  });
  auto b = tendril::spawn("b", [&] {
    while (!a_done) tendril::sleep(0s);
    b_done = true;
  });
  tendril::joinall({a, b});
}

void bank_race() {
  int balance = 100;
  auto withdraw = [&balance](int amount, int work) {
    for (int i = 0; i < work; ++i) tendril::sleep(tendril::Duration::zero());
    if (balance >= amount) {
      tendril::sleep(tendril::Duration::zero());  // write the audit log
      balance -= amount;
    }
  };
  auto a = tendril::spawn("withdraw a", withdraw, 80, 0);
  auto b = tendril::spawn("withdraw b", withdraw, 80, 8);
  tendril::joinall({a, b});
  if (balance < 0) throw std::logic_error("overdraft: balance is " + std::to_string(balance));
}

void lost_update_far() {
  int counter = 0;
  auto a = tendril::spawn("a", [&counter] {
    const int v = counter;
    tendril::sleep(0s);
    counter = v + 1;
  });
  std::vector<tendril::Ref<tendril::Greenlet>> all{a};
  for (int i = 0; i < 8; ++i) {
    all.push_back(tendril::spawn([] {
      for (int k = 0; k < 3; ++k) tendril::sleep(0s);
    }));
  }
  all.push_back(tendril::spawn("b", [&counter] {
    tendril::sleep(0s);
    tendril::sleep(0s);
    ++counter;
  }));
  tendril::joinall(all);
  if (counter != 2) throw std::logic_error("lost update: counter is " + std::to_string(counter));
}

void explore_bank(std::ostream& out, const std::string& artifacts, const std::string& command) {
  tendril::ExploreResult saved;
  for (const char* policy : {"fifo", "random", "pct"}) {
    tendril::ExploreOptions options;
    options.test = "Demo.BankRace";
    options.policy = policy;
    options.schedules = 1000;
    options.pct_depth = 2;
    options.artifacts = artifacts;
    const auto result = tendril::explore(options, bank_race, command);
    if (result.summary.rfind("tendril: replayed ", 0) == 0) {  // TENDRIL_REPLAY was set
      out << result.summary;
      return;
    }
    out << policy << ": " << (result.ok() ? "no failure" : "failure") << " after "
        << result.schedules_run << " schedule" << (result.schedules_run == 1 ? "" : "s") << " ("
        << result.distinct << " distinct)";
    if (!result.ok()) out << ": " << result.failure;
    out << "\n";
    if (!result.ok() && saved.ok()) saved = result;
  }
  if (saved.ok()) return;
  out << "\nthe first failure's report:\n" << saved.summary << "\n";
  tendril::ExploreOptions replay;
  replay.test = "Demo.BankRace";
  replay.replay = saved.schedule_file;
  const auto again = tendril::explore(replay, bank_race);
  out << "saved " << saved.schedule_file
      << "; replaying it: " << (again.ok() ? "passed (it should have failed!)" : again.failure)
      << "\n";
  out << "its flow trace: " << saved.trace_file;
  if (!saved.flow_file.empty()) out << ", flow graph: " << saved.flow_file;
  out << "\n";
}

void raw_switch(std::ostream& out) {
  tendril::RawGreenlet* gr1 = nullptr;
  tendril::RawGreenlet* gr2 = nullptr;
  tendril::RawGreenlet test1([&] {
    out << 12 << "\n";
    gr2->switch_to();
    out << 34 << "\n";
  });
  tendril::RawGreenlet test2([&] {
    out << 56 << "\n";
    gr1->switch_to();
    out << 78 << "\n";  // never printed: nothing switches back into test2
  });
  gr1 = &test1;
  gr2 = &test2;
  gr1->switch_to();
}

void select_polling(std::ostream& out, tendril::Hub& hub) {
  auto tic = [] {
    char buf[48];
    std::snprintf(buf, sizeof buf, "at %1.1f seconds",
                  static_cast<double>(tendril::now().count()) / 1e9);
    return std::string(buf);
  };
  tendril::run(hub, [&] {
    auto poller = [&](const char* name) {
      return tendril::spawn(name, [&] {
        out << "Started Polling: " << tic() << "\n";
        tendril::select({}, {}, 2s);
        out << "Ended Polling: " << tic() << "\n";
      });
    };
    auto gr1 = poller("gr1");
    auto gr2 = poller("gr2");
    auto gr3 = tendril::spawn("gr3", [&] {
      out << "Hey lets do some stuff while the greenlets poll, " << tic() << "\n";
      tendril::sleep(1s);
    });
    tendril::joinall({gr1, gr2, gr3});
  });
}

void hello_http_handler(tendril::Stream& s) {
  std::string request;
  while (request.find("\r\n\r\n") == std::string::npos) {
    if (request.size() > 65536) return;  // not HTTP: drop it
    std::string part = s.recv(4096, 10s);
    if (part.empty()) return;  // the client went away mid-request
    request += part;
  }
  tendril::sleep(100ms);
  s.sendall(
      "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nHello World\n");
}

HttpLoad hello_http_load(std::ostream& out, tendril::Hub& hub, int clients) {
  HttpLoad load;
  tendril::run(hub, [&] {
    tendril::StreamServer server(tendril::listen({"127.0.0.1", 0}), hello_http_handler, 10000);
    server.start();
    const tendril::Duration start = tendril::now();
    tendril::Duration last = start;
    std::vector<tendril::Ref<tendril::Greenlet>> workers;
    for (int c = 0; c < clients; ++c) {
      workers.push_back(tendril::spawn([&] {
        try {
          tendril::Stream s = tendril::connect(server.address(), 5s);
          s.sendall("GET / HTTP/1.0\r\n\r\n", 5s);
          std::string response;
          for (std::string part; !(part = s.recv(4096, 5s)).empty();) response += part;
          const bool ok = response.rfind("HTTP/1.0 200 OK\r\n", 0) == 0 && response.size() >= 12 &&
                          response.compare(response.size() - 12, 12, "Hello World\n") == 0;
          ++(ok ? load.ok : load.failed);
        } catch (const std::system_error&) {
          ++load.failed;
        } catch (const tendril::Timeout&) {
          ++load.failed;
        }
        last = std::max(last, tendril::now());
      }));
    }
    tendril::joinall(workers);
    server.stop(1s);
    load.elapsed = last - start;
  });
  out << load.ok << "/" << clients << " requests answered with 200 OK, " << load.failed
      << " failed, in " << seconds(load.elapsed) << "\n";
  return load;
}

}  // namespace seeds
