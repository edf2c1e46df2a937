"""What sending a frame to the page costs the server: Gradio's default (WebP, written in place) against
the app's way (JPEG through litdemo/app/pictures.py, written whole and reused), in one process.

    python benchmarks/bench_app_pictures.py            # the first tour video's 32 frames as the app draws them

The app's server encodes the frame picture (640 x 640 at micro's 128 px) on every click, frame step,
played frame and streamed propagation update, so this cost is paid by every student many times.
Each round times every frame under each way, interleaved, so a load that comes and goes on a shared
machine falls on all of them alike. Prints median milliseconds per frame and the ratio to Gradio's
default. Also: what a second tab showing the same frame costs (encoded again to find its name; the
file is reused, not rewritten).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's litdemo


def app_frames(tour_index: int) -> tuple[str, list[np.ndarray]]:
    """Every frame of a tour video as the app shows it after a click on frame 0 and a propagation."""
    from litdemo.app import AppConfig, render
    from litdemo.app import handlers as h
    from litdemo.app.samples import TOUR
    from litdemo.app.state import AppSession, ModelCache, ModelChoice

    sample = TOUR[tour_index].name

    app = AppSession(Path(tempfile.mkdtemp(prefix="bench-pictures-")))
    h.open_sample(app, sample, ModelChoice(name="micro", device="cpu", mode="lit-lora"), AppConfig(), ModelCache())
    ys, xs = np.nonzero(app.sample.gt[1][0])
    s = render.display_scale(*app.sample.gt[1][0].shape)
    h.click(app, (xs.mean() + 0.5) * s - 0.5, (ys.mean() + 0.5) * s - 0.5)
    list(h.propagate(app))
    frames = []
    for t in range(app.lit.num_frames):
        h.goto(app, t)
        frames.append(h.frame_view(app)["image"])
    app.close()
    return f"{TOUR[tour_index].split}-{TOUR[tour_index].index}", frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tour", type=int, default=0, help="which tour video (index into the app's tour)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="bench-pictures-cache-")  # a fresh cache per run
    import gradio as gr

    from litdemo.app import pictures

    video, frames = app_frames(args.tour)
    ways = {
        "Gradio's default (WebP, in place)": (gr.Image(type="numpy"), lambda c, f: c.postprocess(f)),
        "PNG through pictures.py": (gr.Image(type="numpy", format="png"), pictures.for_component),
        "JPEG through pictures.py (the app)": (gr.Image(type="numpy", format="jpeg"), pictures.for_component),
    }
    ms: dict[str, list[float]] = {name: [] for name in ways}
    again: list[float] = []
    for _ in range(args.rounds):
        for frame in frames:
            frame = frame.copy()
            frame[0, 0] = np.random.randint(0, 256, 3)  # new content each round: a first write, as a new view is
            for name, (component, send) in ways.items():
                tic = time.perf_counter()
                send(component, frame)
                ms[name].append(1000 * (time.perf_counter() - tic))
            component, send = ways["JPEG through pictures.py (the app)"]
            tic = time.perf_counter()
            send(component, frame)  # a second tab showing the same frame
            again.append(1000 * (time.perf_counter() - tic))
    base = statistics.median(ms["Gradio's default (WebP, in place)"])
    shape = "x".join(map(str, frames[0].shape[:2]))
    print(f"{video}: {len(frames)} frames of {shape} px, {args.rounds} rounds, interleaved\n")
    print("| how a frame is sent | ms per frame (median) | vs Gradio's default |\n|---|---|---|")
    for name, values in ms.items():
        print(f"| {name} | {statistics.median(values):.1f} | {statistics.median(values) / base:.2f}x |")
    print(f"| the same JPEG again (another tab, same frame: encoded, the file reused) | {statistics.median(again):.2f} | "
          f"{statistics.median(again) / base:.3f}x |")


if __name__ == "__main__":
    main()
