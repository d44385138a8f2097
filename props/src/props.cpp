// SPDX-License-Identifier: Apache-2.0
// props.cpp: running bodies under generated schedules, for RapidCheck properties.
#include "tendril/props.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "tendril/explore.hpp"

namespace tendril::props {

std::string VectorChooser::describe() const {
  std::string out = "vector(";
  for (std::size_t i = 0; i < answers_.size(); ++i)
    out += (i ? "," : "") + std::to_string(answers_[i]);
  return out + ")";
}

rc::Gen<std::vector<std::uint32_t>> schedules(std::size_t max_length, std::uint32_t max_answer) {
  return rc::gen::withSize([max_length, max_answer](int size) {
    const auto length = std::min<std::size_t>(max_length, static_cast<std::size_t>(size));
    return rc::gen::resize(static_cast<int>(length),
                           rc::gen::container<std::vector<std::uint32_t>>(
                               rc::gen::inRange<std::uint32_t>(0, max_answer)));
  });
}

namespace {

std::string failure_text(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const rc::detail::CaseResult& r) {
    return r.description;  // an RC_ASSERT inside the body
  } catch (...) {
    return describe_exception(std::current_exception());
  }
}

RunResult run_with(std::unique_ptr<Chooser> chooser, const std::function<void()>& body,
                   const std::string& test, std::uint64_t seed, const SimOptions& options,
                   ReplayChooser* replayer = nullptr) {
  RunResult result;
  auto recorder = std::make_unique<RecordingChooser>(std::move(chooser));
  RecordingChooser* rec = recorder.get();
  SimHub hub(std::move(recorder), options);
  RunChecks checks;
  checks.replay = replayer;
  checks.describe = failure_text;
  result.failure = run_checked(hub, body, checks);
  result.schedule = rec->schedule(test, seed);
  result.hash = hub.schedule_hash();
  return result;
}

std::string exe_path() {
  char exe[4096] = {0};
  const ssize_t len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  return len > 0 ? std::string(exe, static_cast<std::size_t>(len)) : std::string("<test binary>");
}

// quote() makes a word safe to paste into a POSIX shell.
std::string quote(const std::string& s) {
  bool plain = !s.empty();
  for (char c : s) {
    plain = plain && (std::isalnum(static_cast<unsigned char>(c)) ||
                      std::strchr("_./=:-+,@%", c) != nullptr);
  }
  if (plain) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string replay_env() {
  const char* replay = std::getenv("TENDRIL_REPLAY");
  return replay != nullptr ? replay : "";
}

}  // namespace

std::string schedule_path(const std::string& test) {
  const char* dir_env = std::getenv("TENDRIL_ARTIFACTS");
  const std::string dir = dir_env && *dir_env ? dir_env : "tendril-artifacts";
  std::string safe;
  for (char c : test) safe += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_';
  std::error_code ec;
  const auto abs = std::filesystem::absolute(std::filesystem::path(dir) / (safe + ".schedule"), ec);
  return ec ? dir + "/" + safe + ".schedule" : abs.lexically_normal().string();
}

std::string reproduction_path(const std::string& schedule_file) {
  const std::string suffix = ".schedule";
  const bool has =
      schedule_file.size() >= suffix.size() &&
      schedule_file.compare(schedule_file.size() - suffix.size(), suffix.size(), suffix) == 0;
  return (has ? schedule_file.substr(0, schedule_file.size() - suffix.size()) : schedule_file) +
         ".rapidcheck";
}

namespace detail {

std::string current_test() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return info ? std::string(info->test_suite_name()) + "." + info->name() : std::string("props");
}

std::string replay_reproduction() {
  const std::string replay = replay_env();
  if (replay.empty()) return {};
  std::ifstream in(reproduction_path(replay));
  if (!in) return {};  // none saved: the property's only input is its schedule
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.rfind("reproduce=", 0) != 0) {
    throw ScheduleError("tendril: " + reproduction_path(replay) +
                        ": expected one line \"reproduce=...\" (RapidCheck's reproduction)");
  }
  return text;
}

void save_reproduction(const std::string& test, const std::string& reproduce) {
  const std::string path = reproduction_path(schedule_path(test));
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::trunc);
  out << reproduce << "\n";
  out.close();
  if (!out) throw ScheduleError("tendril: cannot write " + path);
}

}  // namespace detail

RunResult run_under(const std::vector<std::uint32_t>& answers, const std::function<void()>& body,
                    const std::string& test, const SimOptions& options) {
  return run_with(std::make_unique<VectorChooser>(answers), body, test, 0, options);
}

void check_under(const std::vector<std::uint32_t>& answers, const std::function<void()>& body,
                 const SimOptions& options) {
  const std::string test = detail::current_test();
  const std::string replay = replay_env();
  if (!replay.empty()) {
    Schedule schedule = load_schedule(replay);
    if (schedule.test != test) {
      throw ScheduleError("tendril: " + replay + " is a schedule of test '" + schedule.test +
                          "', not of '" + test + "'");
    }
    auto replayer = std::make_unique<ReplayChooser>(schedule);
    ReplayChooser* r = replayer.get();
    const RunResult result = run_with(std::move(replayer), body, test, 0, options, r);
    // A replay saves nothing: the file it replays stays as it was.
    if (!result.failure.empty()) RC_FAIL(result.failure + "\n  replayed " + replay);
    return;
  }
  const RunResult result =
      run_with(std::make_unique<VectorChooser>(answers), body, test, 0, options);
  if (result.failure.empty()) return;
  const std::string path = schedule_path(test);
  save_schedule(result.schedule, path);
  std::error_code ec;
  const std::string cwd = std::filesystem::current_path(ec).string();
  RC_FAIL(result.failure + "\n  under a schedule of " +
          std::to_string(result.schedule.choices.size()) + " choices, " +
          std::to_string(away_from_fifo(result.schedule)) + " of them away from FIFO; saved to " +
          path + "\n  replay: " + (ec ? std::string() : "cd " + quote(cwd) + " && ") +
          "TENDRIL_REPLAY=" + quote(path) + " " + quote(exe_path()) +
          " --gtest_filter=" + quote(test));
}

}  // namespace tendril::props
