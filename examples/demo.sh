#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# demo.sh: installs the Debian packages if missing, builds the examples and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target demo tendril-viz  # the demo prints tendril-viz commands
./build/examples/demo
