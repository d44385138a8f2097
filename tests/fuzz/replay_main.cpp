// SPDX-License-Identifier: Apache-2.0
// replay_main.cpp: the deterministic corpus replay. Linked with one fuzz target's source, it
// feeds every file under the folders (or the files) named on its command line to that target's
// LLVMFuzzerTestOneInput(), in name order, so that the committed corpus and regression inputs
// are checked on every build, with any compiler and without libFuzzer.
// usage: <target>_replay PATH... (exit 0: every input passed; 1: a failure; 2: bad usage)
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

// inputs_of() is path itself if it is a file, or every regular file under it, sorted.
std::vector<std::filesystem::path> inputs_of(const std::filesystem::path& path) {
  std::vector<std::filesystem::path> out;
  if (std::filesystem::is_regular_file(path)) {
    out.push_back(path);
  } else {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(path)) {
      if (entry.is_regular_file()) out.push_back(entry.path());
    }
    std::sort(out.begin(), out.end());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  std::size_t count = 0, failed = 0;
  for (int a = 1; a < argc; ++a) {
    std::error_code ec;
    if (!std::filesystem::exists(argv[a], ec)) {
      // A mistyped path must not pass by checking nothing.
      std::fprintf(stderr, "fuzz-replay: %s does not exist\n", argv[a]);
      return 2;
    }
    for (const auto& path : inputs_of(argv[a])) {
      std::ifstream in(path, std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                    std::istreambuf_iterator<char>());
      // Named before it runs, so that a crash (which ends the process) is blamed on its input.
      std::fprintf(stderr, "fuzz-replay: %s (%zu bytes)\n", path.c_str(), bytes.size());
      std::fflush(stderr);
      try {
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz-replay: FAILED: %s: uncaught exception: %s\n", path.c_str(),
                     e.what());
        ++failed;
      }
      ++count;
    }
  }
  if (count == 0) {
    std::fprintf(stderr, "fuzz-replay: no inputs found: an empty corpus checks nothing\n");
    return 1;
  }
  std::fprintf(stderr, "fuzz-replay: %zu inputs, %zu failed\n", count, failed);
  return failed == 0 ? 0 : 1;
}
