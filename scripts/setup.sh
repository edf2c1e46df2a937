#!/usr/bin/env bash
# Set up litdemo on a fresh machine: a virtual environment in .venv with litdemo, its notebook
# and test extras, and (as root, with apt) Debian's Chromium for the browser test.
# Used by the README and by .ci/run, so the two never drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
source .venv/bin/activate
python -m pip install -q --upgrade pip setuptools wheel
# torch first: sam2 compiles against the torch already installed (--no-build-isolation below),
# otherwise pip would fetch a second, unpinned torch just to build it.
python -m pip install -q -c constraints-ci.txt torch torchvision
# SAM2_BUILD_CUDA=0: sam2's optional CUDA hole-filling extension is skipped (it is optional on GPU too).
SAM2_BUILD_CUDA=0 python -m pip install -q --no-build-isolation -c constraints-ci.txt -e ".[notebooks,test]"
python -m ipykernel install --sys-prefix --name python3 >/dev/null
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # The browser test drives Debian's Chromium (no browser download is possible here).
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the browser test will fail" >&2
fi
echo "litdemo is set up in .venv"
