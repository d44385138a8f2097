// SPDX-License-Identifier: Apache-2.0
// explore.cpp: exploration and replay of schedules for tests.
#include "tendril/explore.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "explore_workers.hpp"

namespace tendril {
namespace {

// env_number() reads a whole number from the environment, strictly: digits only (no space, no
// sign), within [min, max]; anything else is a UsageError naming the variable and the value.
std::uint64_t env_number(const char* name, std::uint64_t fallback, std::uint64_t min = 0,
                         std::uint64_t max = UINT64_MAX) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  const std::string text(v);
  const bool digits = text.size() <= 20 && std::all_of(text.begin(), text.end(),
                                                       [](char c) { return c >= '0' && c <= '9'; });
  errno = 0;
  const unsigned long long n = digits ? std::strtoull(v, nullptr, 10) : 0;
  if (!digits || errno != 0 || n < min || n > max) {
    throw UsageError(std::string("tendril: environment variable ") + name +
                     " must be a whole number from " + std::to_string(min) + " to " +
                     std::to_string(max) + ", got '" + v + "'");
  }
  return n;
}

std::string env_text(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? fallback : std::string(v);
}

std::string file_safe(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '_';
  return out;
}

// shell_quote() makes a path or word safe to paste into a POSIX shell.
std::string shell_quote(const std::string& s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_./=:-+,@%", c) != nullptr;
  });
  if (plain) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string absolute(const std::string& path) {
  std::error_code ec;
  const auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

// in_cwd() prefixes a command with a cd to the current directory, so that it runs the same when
// pasted anywhere (the test may read files relative to where it ran).
std::string in_cwd(const std::string& command) {
  std::error_code ec;
  const auto cwd = std::filesystem::current_path(ec);
  return ec ? command : "cd " + shell_quote(cwd.string()) + " && " + command;
}

// A first SIGINT sets the flag (the handler then reverts to the default: a second one ends the
// process); explore() reads it between schedules.
volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_interrupt(int) { g_interrupted = 1; }

// InterruptGuard catches SIGINT for the length of one explore(), if nobody else handles it.
class InterruptGuard {
 public:
  explicit InterruptGuard(bool enable) {
    struct sigaction now {};
    if (!enable || ::sigaction(SIGINT, nullptr, &now) != 0 || now.sa_handler != SIG_DFL) return;
    struct sigaction mine {};
    mine.sa_handler = &on_interrupt;
    mine.sa_flags = SA_RESETHAND;
    sigemptyset(&mine.sa_mask);
    g_interrupted = 0;
    installed_ = ::sigaction(SIGINT, &mine, &old_) == 0;
  }
  ~InterruptGuard() {
    if (installed_) ::sigaction(SIGINT, &old_, nullptr);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
  bool interrupted() const noexcept { return installed_ && g_interrupted != 0; }

 private:
  struct sigaction old_ {};
  bool installed_ = false;
};

// Progress prints the exploration's progress on stderr (see ExploreOptions::progress). Wall time
// is read here for the report only; nothing in a run depends on it.
class Progress {
 public:
  explicit Progress(const ExploreOptions& o)
      : test_(o.test), policy_(o.policy), start_(std::chrono::steady_clock::now()) {
    terminal_ = o.progress == "auto" && ::isatty(STDERR_FILENO) == 1;
    enabled_ = o.progress != "off";
    every_ = terminal_ ? 0.25 : o.progress_every_s;
    next_ = terminal_ ? 1.0 : o.progress_every_s;
  }
  ~Progress() {
    if (shown_ && terminal_) std::fputs("\r\033[K", stderr);  // the summary replaces the line
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void update(std::uint64_t schedules, std::uint64_t distinct, std::uint64_t failures) {
    if (!enabled_) return;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (elapsed < next_) return;
    next_ = elapsed + every_;
    shown_ = true;
    std::fprintf(stderr,
                 "%stendril: exploring %s with %s: %llu schedules (%.0f/s), %llu distinct, "
                 "%.1f s, %llu failure%s%s",
                 terminal_ ? "\r" : "", test_.c_str(), policy_.c_str(),
                 static_cast<unsigned long long>(schedules),
                 elapsed > 0 ? static_cast<double>(schedules) / elapsed : 0.0,
                 static_cast<unsigned long long>(distinct), elapsed,
                 static_cast<unsigned long long>(failures), failures == 1 ? "" : "s",
                 terminal_ ? "\033[K" : "\n");
    std::fflush(stderr);
  }

 private:
  std::string test_, policy_;
  std::chrono::steady_clock::time_point start_;
  bool terminal_ = false;
  bool enabled_ = true;
  bool shown_ = false;
  double every_ = 10;
  double next_ = 10;
};

// viz_tool() is how the printed commands name tendril-viz: this build's, if it is there.
std::string viz_tool() {
#ifdef TENDRIL_VIZ_TOOL
  std::error_code ec;
  if (std::filesystem::exists(TENDRIL_VIZ_TOOL, ec)) return shell_quote(TENDRIL_VIZ_TOOL);
#endif
  return "tendril-viz";
}

// One run of body under chooser, on `hub` (made on first use, then reset: its stack pool stays
// warm); returns the failure text, or empty on success.
std::string run_once(const SimOptions& sim, std::unique_ptr<Chooser> chooser,
                     const std::function<void()>& body, std::unique_ptr<SimHub>& hub,
                     const RunChecks& checks) {
  if (!hub) {
    hub = std::make_unique<SimHub>(std::move(chooser), sim);
  } else {
    hub->reset(std::move(chooser));
  }
  return run_checked(*hub, body, checks);
}

// AnswerChooser answers a candidate of shrink(): answers[i] (at most n - 1) for the i-th choice,
// then 0.
class AnswerChooser final : public Chooser {
 public:
  AnswerChooser(std::vector<std::uint32_t> answers, std::string policy)
      : answers_(std::move(answers)), policy_(std::move(policy)) {}
  std::uint32_t choose(const ChoicePoint& point) override {
    const std::uint32_t a = next_ < answers_.size() ? answers_[next_] : 0;
    ++next_;
    return std::min(a, point.n - 1);
  }
  std::string describe() const override { return policy_; }

 private:
  std::vector<std::uint32_t> answers_;
  std::size_t next_ = 0;
  std::string policy_;
};

// KeyChooser answers a candidate of shrink() that keeps some of a schedule's choices away from
// FIFO: at the i-th choice, if kept[i], the alternative that runs what the schedule chose there
// (the same greenlet or primitive, wherever it now stands in the queue; a random draw keeps its
// number), else 0. Following what was chosen rather than its position keeps the choices that
// matter meaningful when an earlier one changes the queue (noise greenlets reordered).
class KeyChooser final : public Chooser {
 public:
  KeyChooser(const Schedule& schedule, std::vector<bool> kept, std::string policy)
      : schedule_(schedule), kept_(std::move(kept)), policy_(std::move(policy)) {}
  std::uint32_t choose(const ChoicePoint& point) override {
    const std::size_t i = next_++;
    if (i >= kept_.size() || !kept_[i]) return 0;
    const ChoiceRecord& was = schedule_.choices[i];
    if (point.kind == ChoiceKind::random) return std::min(was.answer, point.n - 1);
    for (std::uint32_t j = 0; j < point.n; ++j) {
      if (point.key(j) == was.chosen_key) return j;
    }
    return 0;
  }
  std::string describe() const override { return policy_; }

 private:
  const Schedule& schedule_;
  std::vector<bool> kept_;
  std::size_t next_ = 0;
  std::string policy_;
};

// RunAheadChooser answers a candidate of shrink() by what ran rather than when: each kept choice
// away from FIFO becomes "the k-th run of X goes first" (X a greenlet or primitive, k counted
// over the run), applied at the first choice where X's k-th run is among the alternatives;
// everything else is FIFO. Robust when dropping other choices moves the moment X is offered.
class RunAheadChooser final : public Chooser {
 public:
  RunAheadChooser(const Schedule& schedule, const std::vector<bool>& kept, std::string policy)
      : policy_(std::move(policy)) {
    std::map<std::uint64_t, std::uint64_t> runs;
    std::uint64_t draws = 0;  // random draws are numbered in the order they happen
    for (std::size_t i = 0; i < schedule.choices.size(); ++i) {
      const ChoiceRecord& c = schedule.choices[i];
      if (c.kind == ChoiceKind::random) {
        const std::uint64_t d = draws++;
        if (i < kept.size() && kept[i] && c.answer != 0) draws_[d] = c.answer;
        continue;
      }
      const std::uint64_t k = runs[c.chosen_key]++;
      if (i < kept.size() && kept[i] && c.answer != 0) ahead_.insert({c.chosen_key, k});
    }
  }
  std::uint32_t choose(const ChoicePoint& point) override {
    if (point.kind == ChoiceKind::random) {
      const auto it = draws_.find(draws_seen_++);
      return it == draws_.end() ? 0 : std::min(it->second, point.n - 1);
    }
    std::uint32_t answer = 0;
    for (std::uint32_t j = 0; j < point.n; ++j) {
      const std::uint64_t key = point.key(j);
      if (ahead_.count({key, runs_[key]}) != 0) {
        answer = j;
        break;
      }
    }
    ++runs_[point.key(answer)];
    return answer;
  }
  std::string describe() const override { return policy_; }

 private:
  std::set<std::pair<std::uint64_t, std::uint64_t>> ahead_;  // (key, k): ordered, never hashed
  std::map<std::uint64_t, std::uint32_t> draws_;             // the i-th random draw's answer
  std::uint64_t draws_seen_ = 0;
  std::map<std::uint64_t, std::uint64_t> runs_;
  std::string policy_;
};

std::vector<std::uint32_t> answers_of(const Schedule& s) {
  std::vector<std::uint32_t> out;
  out.reserve(s.choices.size());
  for (const auto& c : s.choices) out.push_back(c.answer);
  while (!out.empty() && out.back() == 0) out.pop_back();
  return out;
}

std::uint64_t answer_sum(const Schedule& s) {
  std::uint64_t sum = 0;
  for (const auto& c : s.choices) sum += c.answer;
  return sum;
}

// smaller() orders schedules for shrinking: fewer answers away from FIFO, then a smaller sum of
// answers (fewer skipped alternatives), then fewer choices.
bool smaller(const Schedule& a, const Schedule& b) {
  const auto ka = away_from_fifo(a), kb = away_from_fifo(b);
  if (ka != kb) return ka < kb;
  const auto sa = answer_sum(a), sb = answer_sum(b);
  if (sa != sb) return sa < sb;
  return a.choices.size() < b.choices.size();
}

// trace_failure() replays the failing schedule once more under a Tracer and saves the trace (and,
// with a renderer installed, its flow graph) beside the schedule file. A failure here is noted in
// the result, never raised: the schedule file is what matters.
trace::Trace trace_failure(SimHub& hub, const std::string& test, const Schedule& schedule,
                           const std::function<void()>& body, const RunChecks& checks,
                           ExploreResult& result) {
  const std::string base =
      result.schedule_file.substr(0, result.schedule_file.size() - std::string(".schedule").size());
  try {
    hub.reset(std::make_unique<ReplayChooser>(schedule));
    trace::Trace traced;
    {
      trace::Tracer tracer(hub, test);
      (void)run_checked(hub, body, checks);  // the failure itself, again: expected
      traced = tracer.trace();
    }
    result.last_steps = trace::last_steps(traced);
    result.trace_file = base + ".trace";
    trace::save_trace(traced, result.trace_file);
    if (trace::FlowRenderer render = trace::flow_renderer()) {
      render(traced, base + ".svg");
      result.flow_file = base + ".svg";
    }
    return traced;
  } catch (const std::exception& e) {
    result.summary +=
        std::string("tendril: could not trace the failing schedule: ") + e.what() + "\n";
  }
  return {};
}

// trace_passing_neighbour() looks for the nearest passing run: the minimal schedule with one of
// its choices away from FIFO answered FIFO instead (the last ones first, a few at most). Its
// trace is saved beside the failing one, and where the two part ways goes in the result.
void trace_passing_neighbour(SimHub& hub, const std::string& test, const Schedule& minimal,
                             const trace::Trace& failing, const std::function<void()>& body,
                             const RunChecks& checks, ExploreResult& result) {
  if (failing.events.empty() || result.trace_file.empty()) return;
  std::vector<std::size_t> at;
  for (std::size_t i = minimal.choices.size(); i-- > 0;) {
    if (minimal.choices[i].answer != 0) at.push_back(i);
  }
  try {
    for (std::size_t k = 0; k < at.size() && k < 16; ++k) {
      std::vector<std::uint32_t> answers = answers_of(minimal);
      answers[at[k]] = 0;
      hub.reset(std::make_unique<AnswerChooser>(answers, "neighbour of " + minimal.policy));
      trace::Trace traced;
      {
        trace::Tracer tracer(hub, test);
        if (!run_checked(hub, body, checks).empty()) continue;
        traced = tracer.trace();
      }
      const std::string base = result.trace_file.substr(0, result.trace_file.size() - 6);
      result.passing_trace_file = base + ".pass.trace";
      trace::save_trace(traced, result.passing_trace_file);
      const trace::Parting parting = trace::part_ways(traced, failing);
      result.parting = "it passes when choice #" + std::to_string(at[k]) +
                       " is FIFO instead; the runs agree for " + std::to_string(parting.common) +
                       " switches, then\n  passing: " + parting.a + "\n  failing: " + parting.b;
      return;
    }
  } catch (const std::exception& e) {
    result.summary +=
        std::string("tendril: could not trace a passing neighbour: ") + e.what() + "\n";
  }
}

}  // namespace

std::string run_checked(SimHub& hub, const std::function<void()>& body, const RunChecks& checks) {
  const auto describe = [&](const std::exception_ptr& e) {
    if (checks.describe) {
      try {
        return checks.describe(e);
      } catch (...) {
      }
    }
    return describe_exception(e);
  };
  std::string greenlet_failure;
  if (checks.greenlet_errors_fail) {
    hub.set_error_handler([&](Greenlet& g, std::exception_ptr error) {
      if (greenlet_failure.empty()) {
        greenlet_failure = "greenlet " + g.describe() + " failed with " + describe(error);
      }
      hub.fail_run(std::move(error));
    });
  } else if (checks.silent) {
    hub.set_error_handler([](Greenlet&, std::exception_ptr) {});
  }
  std::string failure;
  try {
    run(hub, [&] { body(); });
  } catch (...) {
    failure = describe(std::current_exception());
  }
  hub.set_error_handler(nullptr);  // the handler refers to this frame
  if (!greenlet_failure.empty()) failure = std::move(greenlet_failure);
  if (checks.replay != nullptr) {
    // A divergence is the real cause of whatever happened after it, even if the program caught
    // it; and a faithful replay, failing or not, uses every recorded choice (the recording ran to
    // the end of the run's teardown too).
    try {
      checks.replay->finish();
    } catch (...) {
      std::string divergence = describe_exception(std::current_exception());
      if (!failure.empty() && !checks.replay->diverged()) {
        divergence += "\n  (the replayed run failed with: " + failure + ")";
      }
      failure = std::move(divergence);
    }
  }
  return failure;
}

std::string failure_signature(const std::string& failure) {
  // Hub::position() renders "virtual time <t> s, step <n>, choice <n>, policy <describe>"; the
  // policy's description holds no ':' or ';' (the text that follows a position starts with one).
  static const std::regex position(
      "virtual time [0-9]+\\.[0-9]+ s, step [0-9]+, choice [0-9]+, policy [^:;\n]*");
  return std::regex_replace(failure, position, "<position>");
}

std::uint64_t away_from_fifo(const Schedule& schedule) noexcept {
  std::uint64_t n = 0;
  for (const auto& c : schedule.choices) n += c.answer != 0 ? 1 : 0;
  return n;
}

ShrinkResult shrink(SimHub& hub, const Schedule& failing, const std::string& failure,
                    const std::function<void()>& body, const RunChecks& checks,
                    std::uint64_t max_runs) {
  ShrinkResult best{failing, failure, 0};
  const std::string target = failure_signature(failure);
  const std::string policy = failing.policy.rfind("minimised from ", 0) == 0
                                 ? failing.policy
                                 : "minimised from " + failing.policy;
  // try_chooser() runs one candidate and keeps it if it fails the same way and is smaller.
  auto try_chooser = [&](std::unique_ptr<Chooser> chooser) {
    if (best.runs >= max_runs) return false;
    ++best.runs;
    auto recorder = std::make_unique<RecordingChooser>(std::move(chooser));
    RecordingChooser* rec = recorder.get();
    hub.reset(std::move(recorder));
    std::string got = run_checked(hub, body, checks);
    if (got.empty() || failure_signature(got) != target) return false;
    Schedule candidate = rec->schedule(failing.test, failing.seed);
    if (!smaller(candidate, best.schedule)) return false;
    best.schedule = std::move(candidate);
    best.failure = std::move(got);
    return true;
  };
  auto try_answers = [&](const std::vector<std::uint32_t>& answers) {
    return try_chooser(std::make_unique<AnswerChooser>(answers, policy));
  };
  auto nonzero_positions = [&] {
    std::vector<std::size_t> at;
    for (std::size_t i = 0; i < best.schedule.choices.size(); ++i) {
      if (best.schedule.choices[i].answer != 0) at.push_back(i);
    }
    return at;
  };
  for (bool improved = true; improved && best.runs < max_runs;) {
    improved = false;
    // 1. Fewer answers away from FIFO: set chunks of them to 0, halving the chunk size (ddmin).
    //    Later choices move when an earlier one changes, so each accepted candidate is the
    //    re-recorded run, and positions are recomputed from it.
    std::vector<std::size_t> at = nonzero_positions();
    for (std::size_t chunk = std::max<std::size_t>(1, at.size() / 2); chunk >= 1 && !at.empty();) {
      bool cut = false;
      for (std::size_t from = 0; from < at.size() && best.runs < max_runs; from += chunk) {
        std::vector<bool> kept(best.schedule.choices.size(), false);
        for (std::size_t j : at) kept[j] = true;
        const std::size_t to = std::min(at.size(), from + chunk);
        for (std::size_t j = from; j < to; ++j) kept[at[j]] = false;
        // Two ways to drop them: the others follow what they chose (KeyChooser), or keep their
        // positions in the queue (AnswerChooser); either may be the one that still fails.
        std::vector<std::uint32_t> answers = answers_of(best.schedule);
        for (std::size_t j = from; j < to; ++j) {
          if (at[j] < answers.size()) answers[at[j]] = 0;
        }
        const Schedule current = best.schedule;  // the chooser reads it while best may change
        if (try_chooser(std::make_unique<RunAheadChooser>(current, kept, policy)) ||
            try_chooser(std::make_unique<KeyChooser>(current, std::move(kept), policy)) ||
            try_answers(answers)) {
          improved = cut = true;
          at = nonzero_positions();
          break;
        }
      }
      if (best.runs >= max_runs) break;
      if (!cut) {
        if (chunk == 1) break;
        chunk /= 2;
      } else {
        chunk = std::min(chunk, std::max<std::size_t>(1, at.size()));
      }
    }
    // 2. Smaller answers: each remaining one lowered to the smallest value that still fails.
    at = nonzero_positions();
    for (std::size_t i : at) {
      if (best.runs >= max_runs) break;
      const std::uint32_t was =
          i < best.schedule.choices.size() ? best.schedule.choices[i].answer : 0;
      for (std::uint32_t v = 1; v < was && best.runs < max_runs; ++v) {
        std::vector<std::uint32_t> answers = answers_of(best.schedule);
        if (i >= answers.size() || answers[i] != was) break;  // moved by an earlier acceptance
        answers[i] = v;
        if (try_answers(answers)) {
          improved = true;
          break;
        }
      }
    }
  }
  return best;
}

namespace {

std::uint64_t mix64(std::uint64_t z) noexcept {  // splitmix64's finaliser
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::uint64_t schedule_seed(std::uint64_t base, std::uint64_t i) noexcept {
  return i == 0 ? base : mix64(base ^ mix64(i));
}

namespace {

constexpr const char* policy_names = "fifo, random, pct, pos, portfolio or dfs";

bool known_policy(const std::string& p) {
  return p == "fifo" || p == "random" || p == "pct" || p == "pos" || p == "portfolio" || p == "dfs";
}

// Strategy is what runs one schedule: a policy and, for pct, its depth.
struct Strategy {
  std::string policy;
  std::uint32_t depth = 0;
  // name() is how file names and reports say it: random, pct-d3, pos.
  std::string name() const { return policy == "pct" ? "pct-d" + std::to_string(depth) : policy; }
};

// strategy_for() is the strategy of the schedule with this seed. The portfolio's is a function
// of the seed alone (not of the schedule's index), so that resuming at a seed, or rerunning one
// seed, runs what the exploration ran; the seed is mixed first, so that sharding by seed % shards
// does not give each shard one strategy.
Strategy strategy_for(const ExploreOptions& o, std::uint64_t seed) {
  if (o.policy != "portfolio") return Strategy{o.policy, o.pct_depth};
  switch (mix64(seed) % 4) {
    case 0:
      return Strategy{"pct", 3};
    case 1:
      return Strategy{"random", 0};
    case 2:
      return Strategy{"pct", 2};
    default:
      return Strategy{"pos", 0};
  }
}

// jobs_for() is how many processes run an exploration's schedules: ExploreOptions::jobs, or
// for 0 every CPU this process may use. A process with other threads is not forked (a thread
// holding a lock at the fork would leave it held in the worker forever): it explores alone, and
// says so when more jobs were asked for explicitly.
unsigned jobs_for(const ExploreOptions& o) {
  const unsigned wanted = o.jobs == 0 ? detail::cpu_count() : o.jobs;
  if (wanted <= 1) return 1;
  const unsigned threads = detail::thread_count();
  if (threads > 1) {
    static bool said = false;
    if (o.jobs > 1 && !said) {
      said = true;
      std::fprintf(stderr,
                   "tendril: explore() runs its schedules in this process, not in %u: the process "
                   "has %u threads, and forking it could leave their locks held in the workers\n",
                   o.jobs, threads);
    }
    return 1;
  }
  return std::min(wanted, max_jobs);
}

// make_chooser() is the policy that runs the schedule with this seed under this strategy.
std::unique_ptr<Chooser> make_chooser(const Strategy& strategy, std::uint64_t seed,
                                      std::uint64_t pct_steps) {
  if (strategy.policy == "random") return std::make_unique<Random>(seed);
  if (strategy.policy == "pct") return std::make_unique<Pct>(seed, strategy.depth, pct_steps);
  if (strategy.policy == "pos") return std::make_unique<Pos>(seed);
  return std::make_unique<Fifo>();
}

}  // namespace

ExploreOptions& ExploreOptions::from_env(bool read_shard) {
  policy = env_text("TENDRIL_POLICY", policy);
  if (!known_policy(policy)) {
    throw UsageError("tendril: TENDRIL_POLICY must be " + std::string(policy_names) + ", got '" +
                     policy + "'");
  }
  seed = env_number("TENDRIL_SEED", seed);
  first_schedule = env_number("TENDRIL_FIRST_SCHEDULE", first_schedule, 0, max_first_schedule);
  schedules = env_number("TENDRIL_SCHEDULES", schedules, 1);
  pct_depth =
      static_cast<std::uint32_t>(env_number("TENDRIL_PCT_DEPTH", pct_depth, 1, max_pct_depth));
  pct_steps = env_number("TENDRIL_PCT_STEPS", pct_steps);
  dfs_bound =
      static_cast<std::uint32_t>(env_number("TENDRIL_DFS_BOUND", dfs_bound, 0, max_dfs_bound));
  dfs_bounding = env_text("TENDRIL_DFS_BOUNDING", dfs_bounding);
  if (dfs_bounding != "delay" && dfs_bounding != "choices") {
    throw UsageError("tendril: TENDRIL_DFS_BOUNDING must be delay or choices, got '" +
                     dfs_bounding + "'");
  }
  dfs_deepening = env_number("TENDRIL_DFS_DEEPENING", dfs_deepening ? 1 : 0, 0, 1) == 1;
  jobs = static_cast<unsigned>(env_number("TENDRIL_JOBS", jobs, 0, max_jobs));
  artifacts = env_text("TENDRIL_ARTIFACTS", artifacts);
  replay = env_text("TENDRIL_REPLAY", replay);
  shrink_runs = env_number("TENDRIL_SHRINK", shrink_runs, 0, 100'000'000);
  env_applied = true;
  progress = env_text("TENDRIL_PROGRESS", progress);
  if (progress != "auto" && progress != "lines" && progress != "off") {
    throw UsageError("tendril: TENDRIL_PROGRESS must be auto, lines or off, got '" + progress +
                     "'");
  }
  if (const char* v = std::getenv("TENDRIL_PROGRESS_EVERY"); v != nullptr && *v != '\0') {
    char* end = nullptr;
    errno = 0;
    const double every = std::strtod(v, &end);
    if (errno != 0 || *end != '\0' || !(every >= 0) || every > 1e6) {
      throw UsageError(std::string("tendril: TENDRIL_PROGRESS_EVERY must be a number of seconds "
                                   "from 0 to 1000000, got '") +
                       v + "'");
    }
    progress_every_s = every;
  }
  if (!read_shard) return *this;
  const char* total_var =
      std::getenv("TENDRIL_TOTAL_SHARDS") ? "TENDRIL_TOTAL_SHARDS" : "GTEST_TOTAL_SHARDS";
  const char* index_var =
      std::getenv("TENDRIL_SHARD_INDEX") ? "TENDRIL_SHARD_INDEX" : "GTEST_SHARD_INDEX";
  total_shards = env_number(total_var, total_shards, 1, 1'000'000);
  shard_index = env_number(index_var, shard_index, 0, 999'999);
  if (total_shards == 0 || shard_index >= total_shards) {
    throw UsageError(std::string("tendril: shard index ") + std::to_string(shard_index) +
                     " is not below the shard count " + std::to_string(total_shards) + " (" +
                     index_var + ", " + total_var + ")");
  }
  return *this;
}

namespace {

// replay_one() replays one saved schedule: nothing is saved, so the file stays as it was.
ExploreResult replay_one(const ExploreOptions& o, const std::string& file, const Schedule& schedule,
                         const std::function<void()>& body) {
  ExploreResult result;
  auto replayer = std::make_unique<ReplayChooser>(schedule);
  RunChecks checks;
  checks.greenlet_errors_fail = o.greenlet_errors_fail;
  checks.replay = replayer.get();
  std::unique_ptr<SimHub> hub;
  const std::string failure = run_once(o.sim, std::move(replayer), body, hub, checks);
  result.schedules_run = 1;
  result.distinct = 1;
  result.schedule_file = absolute(file);
  result.minimal_away = result.found_away = away_from_fifo(schedule);
  if (!failure.empty()) {
    result.failures = 1;
    result.failure = failure;
  }
  result.summary = "tendril: replayed " + result.schedule_file + " (" +
                   std::to_string(schedule.choices.size()) + " choices, " +
                   std::to_string(result.found_away) + " away from FIFO, " + schedule.policy +
                   "): " + (failure.empty() ? "passed" : "failed: " + failure) + "\n";
  return result;
}

}  // namespace

ExploreResult explore(const ExploreOptions& o, const std::function<void()>& body,
                      const std::string& command) {
  if (o.test.empty()) throw UsageError("tendril::explore: ExploreOptions::test must name the test");
  if (o.total_shards == 0 || o.shard_index >= o.total_shards) {
    throw UsageError("tendril::explore: shard_index " + std::to_string(o.shard_index) +
                     " is not below total_shards " + std::to_string(o.total_shards));
  }
  if (!known_policy(o.policy)) {
    throw UsageError("tendril::explore: ExploreOptions::policy must be " +
                     std::string(policy_names) + ", got '" + o.policy + "'");
  }
  if (o.schedules == 0) {
    throw UsageError("tendril::explore: ExploreOptions::schedules is 0: nothing would run");
  }
  if (o.first_schedule > max_first_schedule) {
    throw UsageError("tendril::explore: ExploreOptions::first_schedule must be at most " +
                     std::to_string(max_first_schedule) + ", got " +
                     std::to_string(o.first_schedule));
  }
  if (o.pct_depth == 0 || o.pct_depth > max_pct_depth) {
    throw UsageError("tendril::explore: ExploreOptions::pct_depth must be from 1 to " +
                     std::to_string(max_pct_depth) + ", got " + std::to_string(o.pct_depth));
  }
  if (o.dfs_bounding != "delay" && o.dfs_bounding != "choices") {
    throw UsageError(
        "tendril::explore: ExploreOptions::dfs_bounding must be delay or choices, got '" +
        o.dfs_bounding + "'");
  }
  if (o.jobs > max_jobs) {
    throw UsageError("tendril::explore: ExploreOptions::jobs must be at most " +
                     std::to_string(max_jobs) + ", got " + std::to_string(o.jobs));
  }
  if (o.dfs_bound > max_dfs_bound) {
    throw UsageError("tendril::explore: ExploreOptions::dfs_bound must be at most " +
                     std::to_string(max_dfs_bound) + ", got " + std::to_string(o.dfs_bound));
  }
  ExploreResult result;
  std::ostringstream summary;

  if (!o.replay.empty()) {
    Schedule schedule = load_schedule(o.replay);
    if (schedule.test != o.test) {
      throw ScheduleError("tendril: " + o.replay + " is a schedule of test '" + schedule.test +
                          "', not of '" + o.test + "'");
    }
    return replay_one(o, o.replay, schedule, body);
  }
  if (o.read_replay_env) {
    if (const char* env = std::getenv("TENDRIL_REPLAY"); env != nullptr && *env != '\0') {
      Schedule schedule = load_schedule(env);
      if (schedule.test == o.test) return replay_one(o, env, schedule, body);
      std::fprintf(stderr,
                   "tendril: TENDRIL_REPLAY=%s is a schedule of test '%s'; exploring '%s' as "
                   "usual\n",
                   env, schedule.test.c_str(), o.test.c_str());
    }
  }

  RunChecks checks;
  checks.greenlet_errors_fail = o.greenlet_errors_fail;
  RunChecks quiet_checks = checks;
  quiet_checks.silent = true;

  std::uint64_t pct_steps = o.pct_steps;
  std::uint64_t pct_threads = 0;
  if ((o.policy == "pct" || o.policy == "portfolio") && pct_steps == 0) {
    // k for PCT: the number of choices a plain FIFO run offers (at least 1).
    auto counting = std::make_unique<RecordingChooser>(std::make_unique<Fifo>());
    RecordingChooser* c = counting.get();
    std::unique_ptr<SimHub> hub;
    if (o.quiet) o.quiet(true);
    run_once(o.sim, std::move(counting), body, hub, quiet_checks);
    if (o.quiet) o.quiet(false);
    pct_steps = std::max<std::uint64_t>(1, c->records().size());
  }

  std::set<std::uint64_t> hashes;
  std::unique_ptr<SimHub> hub;
  const DfsBounding bounding =
      o.dfs_bounding == "choices" ? DfsBounding::choices : DfsBounding::delay;
  // With deepening, level runs from 0 up to dfs_bound; each level is a fresh enumeration.
  std::uint32_t dfs_level = o.dfs_deepening ? 0 : o.dfs_bound;
  auto dfs = std::make_unique<DfsExplorer>(dfs_level, bounding);
  bool exhausted = false;
  InterruptGuard interrupt(o.catch_interrupt);
  Progress progress(o);
  const bool seeded = o.policy != "fifo" && o.policy != "dfs";
  const std::uint64_t first = seeded ? o.first_schedule : 0;
  std::uint64_t next_index = first;
  std::uint64_t failing_seed = 0;
  const std::uint64_t limit = o.policy == "fifo" ? 1 : o.schedules;
  // mine(i): schedule i belongs to this shard (seeds are split by value, see below).
  const auto mine = [&](std::uint64_t i) {
    return schedule_seed(o.seed, first + i) % o.total_shards == o.shard_index;
  };
  std::uint64_t loop_from = 0;
  std::uint64_t loop_to = limit;
  // worker_failure: what a worker saw at the schedule this process reruns as the first failure.
  std::string worker_failure;
  const unsigned jobs = seeded && limit > 1 ? jobs_for(o) : 1;
  if (jobs > 1) {
    // Worker processes run the schedules; this one then reruns the first failing one (the
    // lowest index, as a single process would have met it) to save, minimise and trace it.
    std::unique_ptr<SimHub> worker_hub;
    std::set<std::uint64_t> seen;  // for the progress line
    std::uint64_t reported = 0;
    std::uint64_t failed = 0;
    detail::WorkerOutcome out = detail::run_in_workers(
        jobs, limit,
        [&] {
          if (o.quiet) o.quiet(true);  // the rerun here reports the failure, once
        },
        mine,
        [&](std::uint64_t i) {
          const std::uint64_t seed = schedule_seed(o.seed, first + i);
          auto recorder = std::make_unique<RecordingChooser>(
              make_chooser(strategy_for(o, seed), seed, pct_steps));
          detail::WorkerRun r;
          r.failure = run_once(o.sim, std::move(recorder), body, worker_hub,
                               o.greenlet_errors_fail ? quiet_checks : checks);
          r.hash = worker_hub->schedule_hash();
          r.greenlets = worker_hub->greenlets_created();
          return r;
        },
        [&] { return interrupt.interrupted(); },
        [&](const detail::WorkerRun& r) {
          seen.insert(r.hash);
          failed += r.failure.empty() ? 0 : 1;
          progress.update(++reported, seen.size(), failed);
        });
    if (out.workers > 0) {
      result.jobs = out.workers;
      if (!out.broken.empty()) {
        throw HubError("tendril::explore: " + out.broken +
                       "; explore in one process with ExploreOptions::jobs = 1 (TENDRIL_JOBS=1)");
      }
      // The first failure: the lowest index that failed, or whose worker died running it.
      std::optional<std::uint64_t> failed_at = out.died_at;
      for (const auto& [i, r] : out.runs) {
        if (!r.failure.empty() && (!failed_at || i < *failed_at)) failed_at = i;
      }
      // Schedules below the first failure that no worker reported (a worker that died lost the
      // reports of its last chunk; an interrupted one left its chunk unfinished) run here, in
      // order, so that the first failure and the counts are a single process's.
      if (failed_at) {
        if (o.quiet) o.quiet(true);
        for (std::uint64_t i = 0; i < *failed_at; ++i) {
          if (out.runs.count(i) != 0 || !mine(i)) continue;
          const std::uint64_t seed = schedule_seed(o.seed, first + i);
          detail::WorkerRun& r = out.runs[i];
          r.failure = run_once(o.sim,
                               std::make_unique<RecordingChooser>(
                                   make_chooser(strategy_for(o, seed), seed, pct_steps)),
                               body, hub, quiet_checks);
          r.hash = hub->schedule_hash();
          r.greenlets = hub->greenlets_created();
          if (!r.failure.empty()) failed_at = i;  // the loop ends here
        }
        if (o.quiet) o.quiet(false);
      }
      for (const auto& [i, r] : out.runs) {
        if (failed_at && i >= *failed_at) break;  // a single process would not have run these
        ++result.schedules_run;
        hashes.insert(r.hash);
        pct_threads = std::max<std::uint64_t>(pct_threads, r.greenlets);
      }
      if (failed_at) {
        loop_from = *failed_at;
        loop_to = *failed_at + 1;
        const std::uint64_t seed = schedule_seed(o.seed, first + *failed_at);
        if (out.died_at == failed_at) {
          worker_failure = out.death;
          std::fprintf(stderr,
                       "tendril: schedule #%llu (seed %llu) of %s: %s; running it again in this "
                       "process\n",
                       static_cast<unsigned long long>(first + *failed_at),
                       static_cast<unsigned long long>(seed), o.test.c_str(), out.death.c_str());
        } else {
          worker_failure = out.runs[*failed_at].failure;
        }
      } else {
        loop_from = loop_to = 0;  // every schedule ran in a worker, and passed
        result.interrupted = out.interrupted;
        std::uint64_t i = 0;
        while (i < limit && (out.runs.count(i) != 0 || !mine(i))) ++i;
        next_index = first + i;
      }
    }
  }
  for (std::uint64_t i = loop_from; i < loop_to; ++i) {
    // A failure the workers found is rerun even after a Ctrl-C: it must not be lost.
    if (worker_failure.empty() && interrupt.interrupted()) {
      result.interrupted = true;
      break;
    }
    std::unique_ptr<Chooser> policy;
    std::uint64_t seed = schedule_seed(o.seed, first + i);
    next_index = first + i;
    if (o.policy == "dfs") {
      policy = dfs->next_run();
      while (!policy && dfs_level < o.dfs_bound && o.dfs_deepening) {
        dfs = std::make_unique<DfsExplorer>(++dfs_level, bounding);  // the next level
        policy = dfs->next_run();
      }
      if (!policy) {
        exhausted = true;  // every schedule within the bound has run
        break;
      }
      seed = i;
    }
    // Another shard's schedule. A depth-first exploration is one sequence that each run extends,
    // so it cannot be split: shard 0 runs all of it, the others none. Seeds are split by value,
    // so that the seed form of a failure's replay command runs in the shard that found it.
    const bool ours = o.policy == "dfs" || o.policy == "fifo"
                          ? o.shard_index == 0
                          : seed % o.total_shards == o.shard_index;
    if (!ours) {
      if (o.policy == "dfs" || o.policy == "fifo") break;
      continue;
    }
    const Strategy strategy = strategy_for(o, seed);
    if (o.policy != "dfs") policy = make_chooser(strategy, seed, pct_steps);
    auto recorder = std::make_unique<RecordingChooser>(std::move(policy));
    RecordingChooser* rec = recorder.get();
    std::string failure = run_once(o.sim, std::move(recorder), body, hub, checks);
    // A schedule a worker saw fail must fail here too: the same seed makes the same run, unless
    // the body depends on something outside the simulation.
    const bool unrepeatable = !worker_failure.empty() && failure.empty();
    if (unrepeatable) {
      failure = "schedule #" + std::to_string(first + i) + " (seed " + std::to_string(seed) +
                ") failed in a worker process (" + worker_failure +
                ") but passed when run again in this process: the test depends on something "
                "outside the simulation (state kept across runs, the wall clock, the process "
                "id...); explore it in one process with ExploreOptions::jobs = 1 (TENDRIL_JOBS=1)";
    }
    const std::uint64_t run_steps = hub->steps();
    ++result.schedules_run;
    next_index = first + i + 1;
    hashes.insert(hub->schedule_hash());
    pct_threads = std::max<std::uint64_t>(pct_threads, hub->greenlets_created());
    progress.update(result.schedules_run, hashes.size(), failure.empty() ? 0 : 1);
    if (failure.empty()) {
      if (interrupt.interrupted()) result.interrupted = true;
      if (result.interrupted) break;
      continue;
    }

    // A failure: save it as found, minimise it, save the minimal one, record its trace. The
    // reruns are quiet (no greenlet error printed, GoogleTest failures swallowed by the helper).
    result.failures = 1;
    failing_seed = seed;
    result.seed = seed;
    const Schedule found = rec->schedule(o.test, seed);
    // The name says what made the schedule: the policy with its parameter (PCT's depth, DFS's
    // bound: runs at other bounds must not overwrite it) and the seed (DFS: the run's index).
    std::string made_by = strategy.name();
    if (o.policy == "dfs") {
      made_by +=
          (bounding == DfsBounding::delay ? "-bound" : "-choices") + std::to_string(dfs_level);
    }
    result.found_by = made_by;
    const std::string base = absolute(o.artifacts) + "/" + file_safe(o.test) + "-" + made_by + "-" +
                             std::to_string(seed);
    result.found_file = base + ".schedule";
    // A folder that cannot be written must not hide the failure found: it is still reported,
    // with the reason the schedule could not be saved (and the seed form, where there is one).
    bool saved = true;
    try {
      save_schedule(found, result.found_file);
    } catch (const std::exception& e) {
      saved = false;
      result.found_file.clear();
      result.save_error = std::string(e.what()) + " (the artifacts folder is ExploreOptions::" +
                          "artifacts or TENDRIL_ARTIFACTS: '" + o.artifacts + "')";
    }
    result.found_away = away_from_fifo(found);
    if (o.quiet) o.quiet(true);
    ShrinkResult minimal{found, failure, 0};
    if (o.shrink_runs > 0 && result.found_away > 0 && !unrepeatable) {
      minimal = shrink(*hub, found, failure, body, quiet_checks, o.shrink_runs);
    }
    result.shrink_runs = minimal.runs;
    result.minimal_away = away_from_fifo(minimal.schedule);
    result.failure = minimal.failure;
    if (saved && minimal.runs > 0 && smaller(minimal.schedule, found)) {
      result.schedule_file = base + ".min.schedule";
      try {
        save_schedule(minimal.schedule, result.schedule_file);
      } catch (const std::exception& e) {
        result.schedule_file = result.found_file;
        result.save_error = std::string("the minimal schedule: ") + e.what();
      }
    } else {
      result.schedule_file = result.found_file;
    }
    if (saved && run_steps > o.trace_max_steps) {
      result.summary += "tendril: no trace written: the failing run took " +
                        std::to_string(run_steps) +
                        " steps, more than ExploreOptions::trace_max_steps (" +
                        std::to_string(o.trace_max_steps) +
                        "); the schedule replays it, and a higher bound traces it\n";
    } else if (saved && !unrepeatable) {
      const trace::Trace failing_trace =
          trace_failure(*hub, o.test, minimal.schedule, body, quiet_checks, result);
      trace_passing_neighbour(*hub, o.test, minimal.schedule, failing_trace, body, quiet_checks,
                              result);
    }
    if (saved) {
      result.replay_command =
          in_cwd("TENDRIL_REPLAY=" + shell_quote(result.schedule_file) + " " + command);
    }
    if (o.quiet) o.quiet(false);
    if (o.env_applied && strategy.policy != "fifo" && strategy.policy != "dfs") {
      // The artifacts folder too, so that the rerun saves where this run did. A portfolio's
      // schedule reruns as the policy that made it.
      std::string env = "TENDRIL_ARTIFACTS=" + shell_quote(absolute(o.artifacts)) +
                        " TENDRIL_POLICY=" + strategy.policy +
                        " TENDRIL_SEED=" + std::to_string(seed) + " TENDRIL_SCHEDULES=1";
      if (strategy.policy == "pct") {
        env += " TENDRIL_PCT_DEPTH=" + std::to_string(strategy.depth) +
               " TENDRIL_PCT_STEPS=" + std::to_string(pct_steps);
      }
      result.seed_command = in_cwd(env + " " + command);
    }
    break;
  }
  result.distinct = hashes.size();
  result.exhausted = exhausted;
  result.dfs_level = dfs_level;
  // What a DFS bound limits, in the summary's words.
  const std::string dfs_what = std::string(bounding == DfsBounding::delay ? "delay" : "choice") +
                               " bound " + std::to_string(o.dfs_bound);
  summary << "tendril: explored " << o.test << " with " << o.policy;
  if (o.policy == "pct") {
    // Burckhardt et al.'s bound for one schedule, with n the greenlets seen and k the choices.
    const double p = Pct::probability_bound(pct_threads, pct_steps, o.pct_depth);
    const double all = 1.0 - std::pow(1.0 - p, static_cast<double>(result.schedules_run));
    char text[160];
    std::snprintf(text, sizeof text,
                  " (depth %u, n=%llu greenlets, k=%llu choices: a depth-%u bug is found with "
                  "probability >= %.3g per schedule, >= %.3g over this run)",
                  o.pct_depth, static_cast<unsigned long long>(pct_threads),
                  static_cast<unsigned long long>(pct_steps), o.pct_depth, p, all);
    summary << text;
  }
  if (o.policy == "portfolio") {
    summary << " (pct depth 3, random, pct depth 2 and pos, drawn per seed)";
  }
  if (o.policy == "dfs") {
    summary << " (" << dfs_what;
    if (o.dfs_deepening) summary << ", deepening from 0; reached " << dfs_level;
    summary << ")";
  }
  if (o.total_shards > 1) summary << ", shard " << o.shard_index << " of " << o.total_shards;
  summary << ": " << result.schedules_run << " schedules, " << result.distinct
          << " distinct interleavings, " << result.failures
          << (result.failures == 1 ? " failure\n" : " failures\n");
  if (result.interrupted) {
    summary << "tendril: interrupted (Ctrl-C) after " << result.schedules_run << " schedule"
            << (result.schedules_run == 1 ? "" : "s");
    if (seeded) {
      summary << "; the next schedule is #" << next_index << ": resume with TENDRIL_SEED=" << o.seed
              << " TENDRIL_FIRST_SCHEDULE=" << next_index;
    }
    summary << "\n";
  } else if (o.policy == "dfs" && result.ok()) {
    if (exhausted) {
      summary << "tendril: the bounded space is exhausted: every schedule within " << dfs_what
              << " ran (" << result.schedules_run << ")\n";
    } else {
      summary << "tendril: stopped at the schedule limit (" << o.schedules << ") before exhausting "
              << dfs_what;
      if (o.dfs_deepening) summary << " (at level " << dfs_level << ")";
      summary << "\n";
    }
  }
  if (result.failures > 0) {
    summary << "tendril: failure: " << result.failure << "\n";
    if (o.policy == "portfolio") {
      summary << "tendril: found by the portfolio's " << result.found_by << " (seed "
              << failing_seed << ")\n";
    }
    if (!result.save_error.empty()) {
      summary << "tendril: could not save the schedule: " << result.save_error << "\n";
    }
    if (result.schedule_file.empty()) {
      summary << "tendril: " << result.found_away << " choice"
              << (result.found_away == 1 ? "" : "s") << " away from FIFO, minimised to "
              << result.minimal_away << " in " << result.shrink_runs << " runs (not saved)\n";
    } else if (result.schedule_file != result.found_file) {
      summary << "tendril: minimised to " << result.minimal_away << " choice"
              << (result.minimal_away == 1 ? "" : "s") << " away from FIFO (found with "
              << result.found_away << ") in " << result.shrink_runs << " runs\n"
              << "tendril: minimal schedule saved to " << result.schedule_file << "\n"
              << "tendril: as found: " << result.found_file << "\n";
    } else {
      summary << "tendril: " << result.found_away << " choice"
              << (result.found_away == 1 ? "" : "s") << " away from FIFO"
              << (result.shrink_runs > 0 ? " (already minimal)" : "") << "\n"
              << "tendril: schedule saved to " << result.schedule_file << "\n";
    }
    if (!result.last_steps.empty()) {
      summary << "tendril: the last steps of each greenlet (seq: why it ran -> where it stopped; "
                 "* = a choice away from FIFO):\n"
              << result.last_steps;
    }
    if (!result.replay_command.empty()) {
      summary << "tendril: replay it with: " << result.replay_command << "\n";
    }
    if (!result.seed_command.empty()) {
      summary << "tendril: or rerun seed " << failing_seed << " with: " << result.seed_command
              << "\n";
    }
    if (!result.flow_file.empty()) {
      summary << "tendril: its flow graph: " << result.flow_file << " (trace: " << result.trace_file
              << ")\n";
    } else if (!result.trace_file.empty()) {
      summary << "tendril: draw its flow graph with: " << viz_tool() << " " << result.trace_file
              << " -o " << result.trace_file.substr(0, result.trace_file.size() - 6) << ".svg\n";
    }
    if (!result.passing_trace_file.empty()) {
      summary << "tendril: " << result.parting << "\n"
              << "tendril: draw both with: " << viz_tool() << " --diff "
              << result.passing_trace_file << " " << result.trace_file << " -o "
              << result.trace_file.substr(0, result.trace_file.size() - 6) << ".diff.svg\n";
    }
  }
  result.summary = summary.str() + result.summary;  // after any note from trace_failure()
  return result;
}

}  // namespace tendril
