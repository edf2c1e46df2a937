"""What a lower-priority training thread buys the propagations beside it, measured in one process.

    python benchmarks/bench_training_priority.py                  # 2 propagating threads, nice 10, 3 rounds
    python benchmarks/bench_training_priority.py --propagators 3 --nice 19 --rounds 5

The app's workshop settings run several model steps and one correction at once on a CPU's few cores
(docs/app.md, "A workshop under load"). This script isolates that mix from the load test's noise (its
client, queue and a shared machine whose speed drifts between runs): `--propagators` threads propagate a
tour video with the micro model over and over, and a training thread corrects frames of another session
(LIT-LoRA, the paper's schedule) meanwhile. Each round measures three conditions back to back:

    alone        the propagating threads, no training
    training     the same, with the training thread at normal priority
    training+N   the same, with the training thread niced by N (litdemo.app.priority, as the app runs it)

and prints the median seconds per propagation and per training step in each, and their ratios to
`alone` / `training` of the same round. Linux only (a thread's own nice value). Not a test: timings
belong here. One torch thread per job, as the workshop runs (OMP_NUM_THREADS=1).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from litdemo import LitConfig, LitSession, load_sam2  # noqa: E402
from litdemo.app.priority import LowPriorityWorkers  # noqa: E402
from litdemo.datasets import make_procedural_video  # noqa: E402
from litdemo.tour import OBJECT_FOLLOWED, OFFLINE_INDEX, OFFLINE_SPLIT  # noqa: E402


def propagations(model, video, count: int) -> list[float]:
    """Seconds of each of `count` propagations of the whole video from a prompt on frame 0."""
    gt, seconds = video.gt[OBJECT_FOLLOWED], []
    for _ in range(count):
        session = LitSession(model, video.frames, LitConfig(mode="sam2"))
        tic = time.perf_counter()
        session.prompt(0, OBJECT_FOLLOWED, mask=gt[0])
        session.propagate_all()
        seconds.append(time.perf_counter() - tic)
    return seconds


def tracked_session(model, video) -> LitSession:
    """A LIT-LoRA session (the paper's defaults) that has tracked the whole video: ready for corrections."""
    session = LitSession(model, video.frames, LitConfig(mode="lit-lora", seed=0))
    session.prompt(0, OBJECT_FOLLOWED, mask=video.gt[OBJECT_FOLLOWED][0])
    session.propagate_all()
    return session


def train_until(stop: threading.Event, session: LitSession, video) -> list[float]:
    """Corrections of frames 4, 5, 6, ... (the paper's schedule: 100 steps first, then 20 with replay)
    until `stop`; seconds per training step of each."""
    gt, per_step, frame = video.gt[OBJECT_FOLLOWED], [], 4
    while not stop.is_set():
        event = session.correct(frame, OBJECT_FOLLOWED, mask=gt[frame])
        per_step.append(event.train_seconds / max(1, len(event.train_curve["loss"])))
        frame = 4 + (frame - 3) % (video.num_frames - 4)
    return per_step


def condition(model, video, propagators: int, count: int, trainer) -> tuple[list[float], list[float]]:
    """Propagation seconds of every propagating thread, and the trainer's seconds per step (if any)."""
    stop, steps, done = threading.Event(), [], []
    training = None
    if trainer is not None:
        session = tracked_session(model, video)
        training = threading.Thread(target=lambda: steps.extend(trainer.run(train_until, stop, session, video)))
        training.start()
        time.sleep(1.0)  # the training is under way before anyone is timed
    threads = [threading.Thread(target=lambda: done.extend(propagations(model, video, count)))
               for _ in range(propagators)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    if training is not None:
        training.join()
        if not steps:
            raise SystemExit("the training thread did no correction (see its traceback above)")
    return done, steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--propagators", type=int, default=2, help="threads propagating at once (the model steps)")
    ap.add_argument("--nice", type=int, default=10, help="nice value added to the training thread")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=3, help="propagations per thread per condition")
    args = ap.parse_args()
    if not sys.platform.startswith("linux"):
        raise SystemExit("a thread's own priority is Linux's: this measures nothing elsewhere")
    torch.set_num_threads(1)
    model = load_sam2("micro", device="cpu")
    video = make_procedural_video(OFFLINE_SPLIT, OFFLINE_INDEX)
    propagations(model, video, 1)  # warm-up: first calls allocate
    normal, niced = LowPriorityWorkers(1, 0), LowPriorityWorkers(1, args.nice)
    names = ["alone", "training", f"training+{args.nice}"]
    prop = {n: [] for n in names}
    step = {n: [] for n in names}
    for r in range(args.rounds):
        for name, trainer in zip(names, (None, normal, niced)):
            done, steps = condition(model, video, args.propagators, args.count, trainer)
            prop[name] += done
            step[name] += steps
            print(f"round {r + 1}: {name:>12}: propagation median {statistics.median(done):.2f} s"
                  + (f", training step median {1000 * statistics.median(steps):.0f} ms" if steps else ""),
                  flush=True)
    med = {n: statistics.median(prop[n]) for n in names}
    print(f"\n{video.name}, {video.num_frames} frames, micro, {args.propagators} propagating threads, "
          f"one torch thread each, {args.rounds} rounds x {args.count} propagations per thread")
    print(f"{'condition':>14} {'propagation s':>14} {'vs alone':>9} {'train step ms':>14} {'vs training':>12}")
    base = statistics.median(step["training"])
    for n in names:
        s = statistics.median(step[n]) if step[n] else None
        print(f"{n:>14} {med[n]:>14.2f} {med[n] / med['alone']:>9.2f} "
              + (f"{1000 * s:>14.1f} {s / base:>12.2f}" if s else f"{'-':>14} {'-':>12}"))
    normal.shutdown()
    niced.shutdown()


if __name__ == "__main__":
    main()
