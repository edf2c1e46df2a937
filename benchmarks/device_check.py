"""ZeroGPU's process boundary with real CUDA tensors: the check issue #14 leaves to a session with a GPU.

    python3 benchmarks/device_check.py --out $OUT          # on a GPU machine (see benchmarks/device_check.sh)
    python benchmarks/device_check.py --frames 12           # here, without CUDA: a dry run of the script

On a ZeroGPU Space the model runs in a worker process and every call hands the tab's session back to
the server pickled; the server must never open a CUDA tensor. `litdemo/app/gpu_transfer.py` makes a GPU
tensor travel as a CPU copy that remembers its device. tests/test_zerogpu.py checks that through
spaces' own worker code, but with CPU tensors *counted* as GPU ones. This script checks it with the
real thing: a LIT session on the GPU (SAM2's memory, the adapter, its dropout generator) goes, after
every step of a short session, to a second process that cannot see the GPU (CUDA_VISIBLE_DEVICES="",
as ZeroGPU's server), which checks that nothing it received is on CUDA and sends it back; the session
then carries on. Its masks and events must equal those of a twin session that never left the GPU.

The model travels as its name, as in the app (a predictor's `shared_as`): the second process has its
own copy on the CPU. gpu_transfer is loaded from its file, because `litdemo.app` imports gradio, which
a GPU machine may lack. Without CUDA every tensor of this process counts as a GPU one (as in
tests/test_zerogpu.py), so the script itself can be run and checked anywhere; only a run with CUDA
answers the question. Prints a verdict and writes `device_check.json` to --out.
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import json
import multiprocessing as mp
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's litdemo
from litdemo import LitConfig, LitSession, load_sam2  # noqa: E402
from litdemo.datasets import make_procedural_video  # noqa: E402
from litdemo.metrics import iou  # noqa: E402
from litdemo.tour import OBJECT_FOLLOWED, OFFLINE_INDEX, OFFLINE_SPLIT  # noqa: E402

TAU = 0.5  # a frame below this IoU with the ground truth is wrong (the simulated user's tau)
_MODELS: dict = {}  # this process's micro model by device, found again by name when a session arrives


def gpu_transfer():
    """litdemo/app/gpu_transfer.py, without importing litdemo.app (which imports gradio)."""
    name = "litdemo_gpu_transfer"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "litdemo" / "app" / "gpu_transfer.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def micro_model(device: str):
    """This process's micro model for `device`; a process that cannot see the GPU (the server) keeps
    its copy on the CPU, under the same name, so the session goes back to the worker's GPU copy."""
    if device not in _MODELS:
        here = "cpu" if device.startswith("cuda") and not torch.cuda.is_available() else device
        model = load_sam2("micro", device=here)
        model.shared_as = (micro_model, (device,))  # pickled as its name, as the app's shared models
        _MODELS[device] = model
    return _MODELS[device]


# --- the server: a process that cannot see the GPU ----------------------------------------------

def server(conn) -> None:
    """Receive sessions, report what arrived, send them back; until None arrives."""
    transfer = gpu_transfer()
    transfer.install()
    while True:
        try:
            session = conn.recv()  # unpickling happens here: a CUDA tensor sent as torch sends it fails now
        except Exception as err:  # noqa: BLE001 - reported to the worker, which prints the verdict
            conn.send((None, {"error": f"{type(err).__name__}: {err}"}))
            return
        if session is None:
            return
        conn.send((session, arrival_report(session, transfer)))


def arrival_report(obj, transfer) -> dict:
    """What the session that arrived holds, counted the way pickling meets it (so the model is met as
    its name, as on the way here): tensors (on CUDA; parked with their device) and random generators
    (made here; parked as their state). tests/test_zerogpu.py's `unparked` counts the same way."""
    seen = {"tensors": 0, "on_cuda": 0, "parked": 0, "generators": 0, "parked_generators": 0,
            "cuda_initialised": torch.cuda.is_initialized()}

    class Census(pickle.Pickler):
        def reducer_override(self, value):
            if isinstance(value, torch.Tensor):
                seen["tensors"] += 1
                seen["on_cuda"] += value.is_cuda
                seen["parked"] += transfer.HOME in value.__dict__
            elif isinstance(value, torch.Generator):
                seen["generators"] += 1
            elif isinstance(value, transfer.ParkedGenerator):
                seen["parked_generators"] += 1
            else:
                return NotImplemented
            return int, ()  # counted, not looked into

    Census(io.BytesIO()).dump(obj)
    return seen


# --- one short session, step by step ------------------------------------------------------------

def work(session: LitSession, gt: dict, hand_over) -> tuple[LitSession, list[str]]:
    """Prompt, propagate, correct the first wrong frame, suggest and accept, propagate, correct again.
    After each step the session goes through `hand_over` (to the server and back, or nowhere) and
    work goes on with what comes back, as the app works on with the session a call returns."""
    obj, steps = OBJECT_FOLLOWED, []

    def step(name: str) -> LitSession:
        steps.append(name)
        return hand_over(session)

    session.prompt(0, obj, mask=gt[0])
    session = step("prompt")
    session.propagate_all()
    session = step("propagate")
    for _ in range(2):  # two corrections: the first trains a new adapter, the second replays the first
        free = [t for t in range(1, session.num_frames - 1) if not session.is_conditioning_frame(t, obj)]
        scores = {t: iou(session.mask(t, obj), gt[t]) for t in free}
        wrong = [t for t in free if scores[t] < TAU]
        # the first wrong frame, as the simulated user; else the worst one, so both updates always run
        t = wrong[0] if wrong else min(free, key=scores.get)
        session.correct(t, obj, mask=gt[t])
        session = step(f"correct {t}")
        if session.suggest(t + 1, obj) is not None:
            session.accept(t + 1, obj)
            session = step(f"accept {t + 1}")
        session.propagate_all(start_frame=t)
        session = step("propagate")
    return session, steps


def outcome(session: LitSession) -> dict:
    return {"events": [(e.kind, e.frame_idx, e.obj_id) for e in session.history.events],
            "masks": {t: dict(masks) for t, masks in session.masks.items()}}


def start_server(context):
    """The server process, started with the GPU hidden from it (spawn copies this environment)."""
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    try:
        here, there = context.Pipe()
        process = context.Process(target=server, args=(there,), daemon=True)
        process.start()
    finally:
        if before is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before
    return here, process


def run(device: str, frames: int) -> dict:
    video = make_procedural_video(OFFLINE_SPLIT, OFFLINE_INDEX, num_frames=frames)
    gt = video.gt[OBJECT_FOLLOWED]
    config = LitConfig(mode="lit-lora", seed=0)
    cuda = torch.cuda.is_available()
    transfer = gpu_transfer()
    transfer.install()  # before the server starts, as the app installs it before spaces forks
    if not cuda:  # the dry run: every tensor of this process counts as a GPU one
        me = os.getpid()
        transfer.on_accelerator = lambda tensor: os.getpid() == me
        transfer.generator_on_accelerator = lambda generator: os.getpid() == me

    torch.manual_seed(0)
    clock = time.perf_counter()
    alone, steps_alone = work(LitSession(micro_model(device), video.frames, config), gt, hand_over=lambda s: s)
    seconds_alone = time.perf_counter() - clock

    conn, process = start_server(mp.get_context("spawn"))
    reports = []

    def round_trip(session):
        conn.send(session)  # to the server, as ZeroGPU's worker hands a call's result back
        back, report = conn.recv()  # and back to the worker with the next call
        if "error" in report:
            raise SystemExit(f"FAILED: the server could not take the session: {report['error']}")
        reports.append(report)
        return back

    torch.manual_seed(0)
    clock = time.perf_counter()
    travelled, steps = work(LitSession(micro_model(device), video.frames, config), gt, hand_over=round_trip)
    seconds_travelling = time.perf_counter() - clock
    conn.send(None)
    process.join(timeout=60)

    a, b = outcome(alone), outcome(travelled)
    pairs = [(t, k) for t in a["masks"] for k in a["masks"][t]]
    missing = [(t, k) for t, k in pairs if b["masks"].get(t, {}).get(k) is None]
    ious = [iou(a["masks"][t][k], b["masks"][t][k]) for t, k in pairs if (t, k) not in missing]
    exact = sum(np.array_equal(a["masks"][t][k], b["masks"][t][k]) for t, k in pairs if (t, k) not in missing)
    adapters_on = sorted({str(p.device) for learner in travelled.learners.values()
                          for adapter in learner.adapters
                          for n, p in adapter.decoder.named_parameters() if "lora_" in n})
    result = {
        "device": device if cuda else f"{device} (dry run: no CUDA, this process's tensors counted as GPU ones)",
        "gpu": torch.cuda.get_device_name(0) if cuda else None, "torch": torch.__version__,
        "video": video.name, "frames": frames, "steps": steps, "steps_alone": steps_alone,
        "server_reports": reports,
        "server_tensors_on_cuda": sum(r["on_cuda"] for r in reports),
        "server_cuda_initialised": any(r["cuda_initialised"] for r in reports),
        "server_generators_made": sum(r["generators"] for r in reports),
        "server_parked_tensors_max": max(r["parked"] for r in reports),
        "server_parked_generators_max": max(r["parked_generators"] for r in reports),
        "adapters_back_on": adapters_on,
        "back_on_the_workers_model": travelled.predictor is micro_model(device),
        "same_events": a["events"] == b["events"], "masks_compared": len(pairs), "masks_missing": len(missing),
        "masks_exactly_equal": int(exact), "mask_iou_min": float(min(ious)) if ious else None,
        "seconds_alone": round(seconds_alone, 2), "seconds_travelling": round(seconds_travelling, 2),
    }
    result["passed"] = bool(
        result["server_tensors_on_cuda"] == 0 and not result["server_cuda_initialised"]
        and result["server_generators_made"] == 0 and result["server_parked_tensors_max"] > 0
        and result["server_parked_generators_max"] > 0 and result["back_on_the_workers_model"]
        and steps == steps_alone and result["same_events"]
        and not missing and ious and min(ious) >= 0.99
        and all(d.startswith(device.split(":")[0]) for d in adapters_on) and adapters_on)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="the worker's device (default cuda; without CUDA: cpu)")
    parser.add_argument("--frames", type=int, default=24, help="frames of the tour video (default 24)")
    parser.add_argument("--out", help="folder for device_check.json")
    args = parser.parse_args()
    device = args.device if torch.cuda.is_available() else "cpu"
    # The twins are compared mask for mask: ask for deterministic kernels (on CUDA, cuBLAS also needs
    # CUBLAS_WORKSPACE_CONFIG, which device_check.sh sets); warn only where an op has none.
    torch.use_deterministic_algorithms(True, warn_only=True)
    result = run(device, args.frames)
    for key, value in result.items():
        if key != "server_reports":
            print(f"{key:32s} {value}")
    print("PASSED" if result["passed"] else "FAILED", "(a dry run without CUDA)" if result["gpu"] is None else "")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "device_check.json").write_text(json.dumps(result, indent=1))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
