"""What ZeroGPU's process boundary adds to every call: a tab's session pickled to the GPU worker and back.

    python benchmarks/bench_zerogpu_transfer.py                    # micro; SAM2.1 tiny (random weights) 512 / 1024 px
    python benchmarks/bench_zerogpu_transfer.py --models micro --frames 32

On a ZeroGPU Space every model call runs in a worker process: the tab's session goes there pickled and
comes back pickled (litdemo/app/layout.py `_call`), its GPU tensors as CPU copies (gpu_transfer.py).
This opens a session on a tour video through the app's own handlers (load, click on frame 0,
propagate, one correction), then times one round trip the way spaces makes it: multiprocessing's
ForkingPickler with gpu_transfer installed and every tensor counted as a GPU one, so each tensor is
copied as a CUDA tensor would be. It prints the tensors' bytes, the pickle stream's bytes and the
seconds of each leg. The weights do not matter here (the model never travels), so SAM2.1 sizes run
with random weights. Not measured: the GPU<->CPU copies themselves (no GPU here); add them on a Space
at the GPU's copy speed. Timings belong here, not in a test.
"""
from __future__ import annotations

import argparse
import io
import pickle
import statistics
import sys
import tempfile
import time
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's litdemo
from litdemo.app import AppConfig, gpu_transfer, render  # noqa: E402
from litdemo.app import handlers as h  # noqa: E402
from litdemo.app.samples import TOUR  # noqa: E402
from litdemo.app.state import AppSession, ModelCache, ModelChoice  # noqa: E402
from litdemo.video_io import load_video  # noqa: E402
from bench_app_load import display_centre  # noqa: E402 - where a student clicks on the enlarged picture

SETUPS = {  # name: (model, image size, untrained)
    "micro": ("micro", 128, False),
    "tiny-512": ("tiny", 512, True),
    "tiny-1024": ("tiny", 1024, True),
}


def tensor_bytes(obj) -> int:
    """Bytes of every tensor pickling `obj` meets (the model is named, never included)."""
    total = [0]

    class Counter(pickle.Pickler):
        def reducer_override(self, value):
            if isinstance(value, torch.Tensor):
                total[0] += value.numel() * value.element_size()
                return int, ()
            return NotImplemented

    Counter(io.BytesIO()).dump(obj)
    return total[0]


def worked_session(setup: str, frames: int, root: Path) -> AppSession:
    """A tab after load, a click on frame 0, propagation and one correction (the app's handlers)."""
    name, size, untrained = SETUPS[setup]
    sample = TOUR[0].render()
    video = load_video(sample.frames[:frames])
    choice = ModelChoice(name=name, device="cpu", mode="lit-ft" if untrained else "lit-lora",
                         untrained=untrained, image_size=size)
    cfg = AppConfig(default_model="micro", train_steps_first=5, train_steps_later=2)  # training time is not measured
    app = AppSession(root)
    h.start(app, video, None, choice, cfg, ModelCache())
    gt = sample.gt[1]
    h.click(app, *display_centre(gt[0], render))
    list(h.propagate(app, stream_every_s=0))
    h.goto(app, frames // 2)
    h.click(app, *display_centre(gt[frames // 2], render))
    list(h.correct_and_continue(app))
    if not app.lit.learners:
        raise SystemExit(f"{setup}: the correction did not reach a learner; the measurement would miss the adapter.")
    return app


def round_trip(app: AppSession, repeats: int) -> dict:
    """Seconds per leg (median of `repeats`) and the pickle stream's size."""
    in_worker = [True]
    gpu_transfer.on_accelerator = lambda tensor: in_worker[0]
    gpu_transfer.generator_on_accelerator = lambda generator: in_worker[0]
    legs = {"worker->server": [], "server->worker": []}
    for _ in range(repeats):
        in_worker[0] = True
        tic = time.perf_counter()
        data = ForkingPickler.dumps(app)
        in_worker[0] = False
        back = pickle.loads(data)
        legs["worker->server"].append(time.perf_counter() - tic)
        tic = time.perf_counter()
        again = ForkingPickler.dumps(back)
        in_worker[0] = True
        pickle.loads(again)
        legs["server->worker"].append(time.perf_counter() - tic)
    return {"stream_bytes": len(data), **{k: statistics.median(v) for k, v in legs.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    ap.add_argument("--frames", type=int, default=16, help="frames of the tour video (<= 32)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if not 2 <= args.frames <= 32:
        raise SystemExit("--frames must be between 2 and 32 (the tour videos have 32).")
    gpu_transfer.install()
    print(f"{'setup':>10} {'frames':>6} {'tensors MB':>10} {'stream KB':>9} {'to server s':>11} {'to worker s':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for setup in args.models:
            app = worked_session(setup, args.frames, Path(tmp) / setup)
            result = round_trip(app, args.repeats)
            print(f"{setup:>10} {args.frames:>6} {tensor_bytes(app) / 2**20:>10.1f} {result['stream_bytes'] / 1024:>9.0f} "
                  f"{result['worker->server']:>11.3f} {result['server->worker']:>11.3f}", flush=True)
            app.close()


if __name__ == "__main__":
    main()
