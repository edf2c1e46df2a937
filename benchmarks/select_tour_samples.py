"""Which procedural videos make a good tour: SAM2 alone vs LIT-LoRA on the micro model.

    python benchmarks/select_tour_samples.py --split tour --first 0 --count 24

Prints, per video, the corrections the simulated user needed with each method (the app's Simulate,
paper's protocol and training schedule) and on how many frames the event can be seen ("on screen":
`tour_event_frames`). The tour (litdemo/app/samples.py) lists, per event, among the videos that show
their event on at least 8 of their 32 frames, the one where LIT-LoRA saves the most corrections (ties:
the larger count for SAM2 alone); this script is how they were picked, so the choice can be redone
when the micro checkpoint changes. The tour comes from the `tour` split, whose videos are neither
training nor evaluation data: picking videos by what LIT does on them must never touch the videos
the benchmark reports on. `easy` and `hard` are offered for looking only; never the training split.
"""
from __future__ import annotations

import argparse
import time

from litdemo.datasets.procedural import HARD_EVENTS, TOUR_EVENTS, make_procedural_video, tour_event_frames
from litdemo.methods import method_config
from litdemo.models import load_sam2
from litdemo.simulated_user import ProtocolConfig, run_simulated_user


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("tour", "easy", "hard"), default="tour")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=9)
    ap.add_argument("--checkpoint", default=None, help="a micro checkpoint other than the shipped one")
    ap.add_argument("--event", default=None, help="only videos of this tour event (e.g. occlusion); "
                    "--count still counts every index in the range")
    ap.add_argument("--min-on-screen", type=int, default=0,
                    help="skip tour videos that show their event on fewer frames (the tour's rule: 8)")
    args = ap.parse_args()
    if not 1 <= args.count <= 60:
        raise SystemExit("--count must be between 1 and 60 (each video takes ~10-60 s on a CPU).")
    predictor = load_sam2("micro", checkpoint=args.checkpoint, device="cpu")
    print(f"{'video':>8} {'event':>10} {'sam2':>5} {'lit-lora':>8} {'accepted':>8} {'seconds':>7} {'on screen':>9}")
    events = {"hard": HARD_EVENTS, "tour": TOUR_EVENTS}.get(args.split, ("occluder",))
    if args.event is not None and args.event not in events:
        raise SystemExit(f"--event must be one of {', '.join(events)} for --split {args.split}.")
    for index in range(args.first, args.first + args.count):
        event = events[index % len(events)]
        if args.event is not None and event != args.event:
            continue
        on_screen = tour_event_frames(index) if args.split == "tour" else "-"
        if args.split == "tour" and on_screen < args.min_on_screen:
            continue  # the event hardly shows: not a tour candidate, whatever LIT does on it
        sample = make_procedural_video(args.split, index)
        tic, counts = time.perf_counter(), {}
        for method in ("sam2", "lit-lora"):
            run = run_simulated_user(predictor, sample, 1, method, protocol=ProtocolConfig(),
                                     lit_config=method_config(method))
            counts[method] = run
        print(f"{sample.name:>8} {event:>10} {counts['sam2'].corrections:>5} {counts['lit-lora'].corrections:>8} "
              f"{counts['lit-lora'].accepted:>8} {time.perf_counter() - tic:>7.1f} {on_screen:>9}", flush=True)


if __name__ == "__main__":
    main()
