#!/bin/bash
# What litdemo can only check on a GPU, in one run of a few minutes (a session lent one: the `device` tool).
#
#   bash benchmarks/device_check.sh prepare     # here: the pure-Python packages the GPU machine lacks -> .device/
#   then, on the GPU machine:  run(command="bash benchmarks/device_check.sh", carry=[".device"], timeout_s=540)
#   a dry run here:  DEVICE=cpu TINY_SIZES=256 PATH=.venv/bin:$PATH bash benchmarks/device_check.sh
#
# 1. ZeroGPU's boundary with real CUDA tensors (benchmarks/device_check.py): PASSED / FAILED.
# 2. What a frame and a correction cost on this GPU (benchmarks/bench_core.py --device cuda): micro at 128 px,
#    SAM2.1 tiny (random weights: times do not depend on them) at 512 and 1024 px.
# Each part writes its log to $OUT; the machine's image has torch, peft, opencv, scipy, matplotlib, imageio and
# huggingface_hub, but not sam2 (and its training package), hydra, omegaconf, antlr4 or iopath.
set -u
SITE=.device/site
if [ "${1:-}" = "prepare" ]; then
    packages=$(.venv/bin/python -c "import site; print(site.getsitepackages()[0])")
    rm -rf "$SITE" && mkdir -p "$SITE"
    for name in sam2 training hydra omegaconf antlr4 iopath; do
        cp -r "$packages/$name" "$SITE/"
    done
    find "$SITE" -name __pycache__ -prune -exec rm -rf {} +
    grep -qx "/.device/" .git/info/exclude 2>/dev/null || echo "/.device/" >> .git/info/exclude
    du -sh "$SITE"
    exit 0
fi

OUT=${OUT:-results/device}
DEVICE=${DEVICE:-cuda}
TINY_SIZES=${TINY_SIZES:-1024 512}
mkdir -p "$OUT"
# litdemo is not installed there: the checkout itself goes on the path (bench_core.py does not add it)
export PYTHONPATH="$PWD:$PWD/$SITE" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
# deterministic CUDA kernels, so the twin sessions of device_check.py can be compared mask for mask
export CUBLAS_WORKSPACE_CONFIG=:4096:8
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')" 2>&1 | tee "$OUT/device.txt"
timeout 240 python3 benchmarks/device_check.py --device "$DEVICE" --out "$OUT" 2>&1 | grep -v "propagate in video" | tee "$OUT/transfer.log"
# per frame: micro by component (profile), tiny as a LIT session against raw sam2 (overhead); then a correction
timeout 90 python3 benchmarks/bench_core.py --device "$DEVICE" --model micro --parts profile corrections \
    --frames 16 --repeats 2 --schedules paper capped 2>&1 | grep -v "propagate in video" | tee "$OUT/cost-micro.log"
timeout 180 python3 benchmarks/bench_core.py --device "$DEVICE" --model tiny --parts overhead corrections --sizes $TINY_SIZES \
    --frames 16 --repeats 2 --schedules paper capped 2>&1 | grep -v "propagate in video" | tee "$OUT/cost-tiny.log"
