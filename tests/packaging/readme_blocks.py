# SPDX-License-Identifier: Apache-2.0
"""readme_blocks.py README CXX INCLUDE_DIR...: compiles every ```cpp block of the README
(-fsyntax-only, C++20, against tendril's headers), so that a README example cannot rot. A block
with its own #include or main() is a translation unit as it stands; a fragment of statements is
compiled inside a function, after the headers the README names. Prints one line per block and
exits 1 if any fails, with the compiler's message and the block's first line number."""
import subprocess
import sys
import tempfile

readme, cxx, includes = sys.argv[1], sys.argv[2], sys.argv[3:]
blocks = []
with open(readme, encoding="utf-8") as f:
    lines = f.read().split("\n")
start = None
for i, line in enumerate(lines):
    if start is None and line.strip() == "```cpp":
        start = i + 1
    elif start is not None and line.strip() == "```":
        blocks.append((start + 1, "\n".join(lines[start:i])))
        start = None
if not blocks:
    sys.exit("readme_blocks.py: no ```cpp block found in " + readme)
fragment_headers = ('#include "tendril/sim.hpp"\n#include "tendril/trace.hpp"\n'
                    '#include "tendril/viz.hpp"\n')
failed = 0
for line_no, code in blocks:
    whole = any(l.startswith("#include") for l in code.split("\n")) or "int main(" in code
    source = code if whole else fragment_headers + "void readme_fragment() {\n" + code + "\n}\n"
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as tu:
        tu.write(source)
    cmd = [cxx, "-std=c++20", "-fsyntax-only", "-w"] + ["-I" + d for d in includes] + [tu.name]
    result = subprocess.run(cmd, capture_output=True, text=True)
    status = "ok" if result.returncode == 0 else "FAILED"
    print("README.md:%d: ```cpp block (%s): %s" % (line_no, "program" if whole else "fragment",
                                                    status))
    if result.returncode != 0:
        failed += 1
        print(result.stderr[:3000])
sys.exit(1 if failed else 0)
