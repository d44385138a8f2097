// props.cpp: running bodies under generated schedules, for RapidCheck properties.
#include "tendril/props.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

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
                   ReplayChooser** replayer = nullptr) {
  RunResult result;
  auto recorder = std::make_unique<RecordingChooser>(std::move(chooser));
  RecordingChooser* rec = recorder.get();
  SimHub hub(std::move(recorder), options);
  try {
    run(hub, [&] { body(); });
    if (replayer != nullptr && *replayer != nullptr) (*replayer)->finish();
  } catch (...) {
    result.failure = failure_text(std::current_exception());
  }
  result.schedule = rec->schedule(test, seed);
  result.hash = hub.schedule_hash();
  return result;
}

}  // namespace

RunResult run_under(const std::vector<std::uint32_t>& answers, const std::function<void()>& body,
                    const std::string& test, const SimOptions& options) {
  return run_with(std::make_unique<VectorChooser>(answers), body, test, 0, options);
}

void check_under(const std::vector<std::uint32_t>& answers, const std::function<void()>& body,
                 const SimOptions& options) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string test =
      info ? std::string(info->test_suite_name()) + "." + info->name() : std::string("props");
  RunResult result;
  const char* replay = std::getenv("TENDRIL_REPLAY");
  if (replay != nullptr && *replay != '\0') {
    Schedule schedule = load_schedule(replay);
    if (schedule.test != test) {
      throw ScheduleError(std::string("tendril: ") + replay + " is a schedule of test '" +
                          schedule.test + "', not of '" + test + "'");
    }
    auto replayer = std::make_unique<ReplayChooser>(schedule);
    ReplayChooser* r = replayer.get();
    result = run_with(std::move(replayer), body, test, 0, options, &r);
  } else {
    result = run_with(std::make_unique<VectorChooser>(answers), body, test, 0, options);
  }
  if (result.failure.empty()) return;
  const char* dir_env = std::getenv("TENDRIL_ARTIFACTS");
  const std::string dir = dir_env && *dir_env ? dir_env : "tendril-artifacts";
  std::string safe;
  for (char c : test) safe += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_';
  const std::string path = dir + "/" + safe + ".schedule";
  save_schedule(result.schedule, path);
  char exe[4096] = {0};
  const ssize_t len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::size_t nonzero = 0;
  for (const auto& c : result.schedule.choices) nonzero += c.answer != 0 ? 1 : 0;
  RC_FAIL(
      result.failure + "\n  under a schedule of " + std::to_string(result.schedule.choices.size()) +
      " choices, " + std::to_string(nonzero) + " of them away from FIFO; saved to " + path +
      "\n  replay: TENDRIL_REPLAY=" + path + " " +
      (len > 0 ? std::string(exe, static_cast<std::size_t>(len)) : std::string("<test binary>")) +
      " --gtest_filter=" + test);
}

}  // namespace tendril::props
