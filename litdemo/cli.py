"""The `litdemo` command line.

    litdemo bench --dataset davis --root data/DAVIS --model tiny --methods sam2 lit-lora --out results/davis
    litdemo demo                          # offline: the shipped micro model on held-out procedural hard videos
    litdemo demo --pretrained             # real SAM2.1 tiny weights on built-in synthetic videos
    litdemo clip-bench ...                # the CLIP variant (see `litdemo clip-bench -h`)

Bad input (unknown dataset, missing folder, no weights) prints one paragraph and exits with 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

EXIT_USAGE = 2

# Offline, the demo runs litdemo's own micro model (docs/micro.md) on held-out procedural videos of the
# `hard` split, whose events (a two-part object, a near-twin, camouflage) are the repeated errors LIT is for.
DEMO_MODEL = "micro"
DEMO_METHODS = ("sam2", "lit-lora", "lit-ft")   # lit-ft: the paper's ablation (the whole decoder copy learns)


def demo_note() -> str:
    from .models import MICRO_LABEL

    return (f"NOTE: model = {MICRO_LABEL}. It is SAM2.1's architecture shrunk to 1.8 M parameters and knows "
            f"litdemo's synthetic shapes only, so these numbers show LIT-LoRA (the paper's method) against plain "
            f"SAM2 on that model; lit-ft is the paper's ablation (the whole decoder copy learns). Expect LIT-LoRA "
            f"to save little here: the paper's learning rates barely move micro's 64-wide decoder (measured, with "
            f"the reasons: docs/micro.md, \"Does LIT-LoRA help?\"). They say nothing "
            f"about SAM2.1 on real video: for that run `litdemo demo --pretrained` or `litdemo bench` with real "
            f"weights and data (docs/benchmark.md).")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="litdemo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_bench(sub)
    _add_demo(sub)
    _add_train_micro(sub)
    _add_plugins(sub)
    return parser


def _add_bench(sub) -> None:
    from .datasets import DATASETS
    from .methods import METHODS
    from .models import MODELS

    p = sub.add_parser("bench", help="corrections per video: the simulated user on a dataset (resumable)",
                       description="Run the paper's simulated-user protocol; a rerun with the same --out skips "
                                   "runs already done. See docs/benchmark.md.")
    p.add_argument("--dataset", required=True, help=f"one of: {', '.join(DATASETS)}")
    p.add_argument("--root", help="the dataset folder (not needed for synthetic)")
    p.add_argument("--model", default="tiny", help=f"SAM2.1 size: {', '.join(MODELS)} (default tiny; micro: "
                                                   f"litdemo's own small model, shipped, no download)")
    p.add_argument("--methods", nargs="+", default=["sam2", "lit-lora"], help=f"of: {', '.join(METHODS)}")
    p.add_argument("--out", default="results/bench", help="results folder (default results/bench)")
    p.add_argument("--untrained", action="store_true", help="random weights (a mechanics check, no download)")
    p.add_argument("--checkpoint", help="a local SAM2.1 checkpoint file (.pt)")
    p.add_argument("--image-size", type=int, help="model input size (default: the model's own, 1024; micro 128)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the best available)")
    p.add_argument("--tau", type=float, default=0.5, help="IoU below which a frame needs fixing (paper: 0.5, 0.7)")
    p.add_argument("--protocol", choices=("interactive", "paper"), default="interactive",
                   help="interactive: litdemo's session (default); paper: the LIT author's evaluation code, "
                        "rule by rule (docs/benchmark.md); recorded in settings.json")
    p.add_argument("--include-late-objects", action="store_true", default=None,
                   help="paper protocol: also evaluate objects that first appear after frame 0 (the author's "
                        "--track_object_appearing_later_in_video); the interactive protocol always does")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="model (untrained) and adapter seeds")
    p.add_argument("--workers", type=int, default=1, help="parallel videos (process / ray backends)")
    p.add_argument("--backend", choices=("serial", "process", "ray"), default="serial")
    p.add_argument("--sequences", nargs="+", help="only these videos (default: all of the split)")
    p.add_argument("--split", help="dataset split (DAVIS: val; MOSE/LVOS: train; ...)")
    p.add_argument("--max-videos", type=int, help="at most this many videos")
    p.add_argument("--max-frames", type=int, help="cut each video to this many frames (after --stride)")
    p.add_argument("--stride", type=int, default=1, help="keep every n-th frame")
    p.add_argument("--max-side", type=int, help="downscale frames so the longer side is at most this")
    p.add_argument("--threads", type=int, help="torch CPU threads (per worker)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--set", dest="lit_settings", action="append", default=[], metavar="FIELD=VALUE",
                   help="a LitConfig field for every method, e.g. --set max_train_seconds=1 --set steps_first=50 "
                        "(repeatable; values are read as JSON, else as text)")
    p.set_defaults(func=_bench)


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="offline: sam2 vs lit-lora (and lit-ft) on the micro model, held-out hard videos",
                       description="Runs without any download: litdemo's shipped micro model at its 128 px on "
                                   "held-out procedural videos of the `hard` split (hard-0, hard-1, ...). "
                                   "NOTE: the micro model is trained on litdemo's synthetic videos, not SAM2.1.")
    p.add_argument("--pretrained", action="store_true", help="use real SAM2.1 tiny weights on synthetic videos "
                                                             "(compares sam2 vs lit-lora)")
    p.add_argument("--checkpoint", help="a local SAM2.1 checkpoint file (.pt), implies --pretrained")
    p.add_argument("--out", default="results/demo", help="results folder (default results/demo)")
    p.add_argument("--videos", type=int, help="videos (default: 3 offline, one of each hard event; 2 pretrained)")
    p.add_argument("--frames", type=int, help="frames per video (default: 32 offline, 16 pretrained)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="adapter seeds (default 0)")
    p.add_argument("--image-size", type=int, help="default: the model's own (micro 128, SAM2.1 1024)")
    p.add_argument("--methods", nargs="+", help="default: sam2 lit-lora lit-ft (offline), sam2 lit-lora (pretrained)")
    p.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: fastest on a shared CPU)")
    p.set_defaults(func=_demo)


def _add_train_micro(sub) -> None:
    from .micro.train import DECAY_EXEMPT, MicroTrainConfig

    p = sub.add_parser("train-micro", help="train the micro SAM2 from scratch on litdemo's procedural videos",
                       description="Trains the micro SAM2 (docs/micro.md) with sam2's own training code. Resumable: "
                                   "run the same command again after a kill. Writes OUT/sam2.1_hiera_micro.pt and "
                                   "OUT/train_log.json (loss curve, settings, sha256).")
    p.add_argument("--out", required=True, help="folder for the checkpoint, the resumable state and the log")
    p.add_argument("--steps", type=int, default=MicroTrainConfig.steps, help="optimizer steps (default: the shipped model's)")
    p.add_argument("--batch-size", type=int, default=MicroTrainConfig.batch_size, help="videos per step")
    p.add_argument("--lr", type=float, default=MicroTrainConfig.lr, help="AdamW peak learning rate")
    p.add_argument("--weight-decay", type=float, default=MicroTrainConfig.weight_decay,
                   help="AdamW weight decay (default 0.01, the shipped run's; SAM2.1 trains with 0.1)")
    p.add_argument("--decay-exempt", choices=sorted(DECAY_EXEMPT), default=MicroTrainConfig.decay_exempt,
                   help="parameters without weight decay: none (the shipped run) or sam2.1 (biases and LayerNorms, "
                        "as SAM2.1's training configs)")
    p.add_argument("--point-prompts", type=float, default=MicroTrainConfig.point_prompts,
                   help="share of clips prompted with clicks or a box instead of the mask")
    p.add_argument("--curriculum", type=float, default=MicroTrainConfig.curriculum,
                   help="share of the run that ramps from easy clips to the full mix")
    p.add_argument("--warmup", type=int, default=MicroTrainConfig.warmup, help="linear warm-up steps")
    p.add_argument("--tail-steps", type=int, default=MicroTrainConfig.tail_steps,
                   help="steps at lr/10 after the cosine (default 1600, the shipped run); a finished run's folder continues with them")
    p.add_argument("--tail-frames", type=int, default=MicroTrainConfig.tail_num_frames,
                   help="frames per clip in the tail (default 16, the shipped run; 0: as the rest of the run)")
    p.add_argument("--width", type=int, default=MicroTrainConfig.width,
                   help="width of the neck, memory attention and mask decoder (default 64, the shipped model's; "
                        "256 is SAM2.1's, a diagnostic over the micro issue's 3 M parameters)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the initialisation (default 0)")
    p.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--threads", type=int, default=2,
                   help="torch CPU threads (default 2, the shipped run's: a run is bit-identical only to runs "
                        "with the same thread count, since the threads split the sums in another order)")
    p.set_defaults(func=_train_micro)


def _train_micro(args: argparse.Namespace) -> int:
    import torch

    from .micro.train import MicroTrainConfig, train_micro

    import cv2

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)  # the procedural renderer's blurs and resizes
    cfg = MicroTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=args.warmup,
                           weight_decay=args.weight_decay, decay_exempt=args.decay_exempt,
                           point_prompts=args.point_prompts, curriculum=args.curriculum, seed=args.seed,
                           tail_steps=args.tail_steps, tail_num_frames=args.tail_frames, width=args.width)
    path = train_micro(args.out, cfg, device=args.device)
    import json

    log = json.loads((path.parent / "train_log.json").read_text())
    print(f"wrote {path} (sha256 {log['sha256']}) after {len(log['loss'])} steps, {log['seconds'] / 60:.1f} min")
    return 0


def _add_plugins(sub) -> None:
    """The CLIP variant registers its own subcommands when it is installed."""
    try:
        from .clip import cli as clip_cli
    except ImportError:
        return
    if hasattr(clip_cli, "register_cli"):
        clip_cli.register_cli(sub)


def _bench(args: argparse.Namespace) -> int:
    from .benchmark import run_benchmark

    options = {"split": args.split} if args.split else None
    result = run_benchmark(
        args.dataset, root=args.root, model=args.model, methods=args.methods, sequences=args.sequences,
        out=args.out, image_size=args.image_size, device=args.device, pretrained=not args.untrained,
        checkpoint=args.checkpoint, tau=args.tau, protocol=args.protocol,
        include_late_objects=args.include_late_objects, seeds=args.seeds, workers=args.workers, backend=args.backend,
        max_videos=args.max_videos, max_frames=args.max_frames, max_side=args.max_side, stride=args.stride,
        dataset_options=options, lit_overrides=_lit_settings(args.lit_settings) or None, progress=True,
        plots=not args.no_plots, threads=args.threads)
    print(result.to_markdown())
    print(f"\n{result.computed} runs computed, {result.reused} reused; wrote {args.out}/results.json, "
          f"results.csv, table.md{'' if args.no_plots else ' and plots/'}")
    return 0


def _lit_settings(pairs: Sequence[str]) -> dict:
    """['max_train_seconds=1', 'capture_dtype=float32'] -> {'max_train_seconds': 1, 'capture_dtype': 'float32'};
    run_benchmark checks the names and values against LitConfig before any work."""
    import json

    settings = {}
    for pair in pairs:
        field, sep, raw = pair.partition("=")
        if not sep or not field.strip():
            raise ValueError(f"--set {pair!r}: write FIELD=VALUE, e.g. --set max_train_seconds=1.")
        try:
            settings[field.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            settings[field.strip()] = raw   # plain text, e.g. a dtype name
    return settings


def _demo(args: argparse.Namespace) -> int:
    from .benchmark import run_benchmark

    pretrained = args.pretrained or args.checkpoint is not None
    if pretrained:  # SAM2.1 tiny's own weights on the built-in synthetic videos
        dataset, model, prefix, videos, frames = "synthetic", "tiny", "synthetic", 2, 16
        methods = args.methods or ["sam2", "lit-lora"]
    else:
        dataset, model, prefix, videos, frames = "procedural", DEMO_MODEL, "hard", 3, 32
        methods = args.methods or list(DEMO_METHODS)
        print(demo_note() + "\n", flush=True)
    result = run_benchmark(
        dataset, model=model, methods=methods, sequences=[f"{prefix}-{i}" for i in range(args.videos or videos)],
        out=args.out, image_size=args.image_size, device=args.device, checkpoint=args.checkpoint,
        seeds=args.seeds, dataset_options={"num_frames": args.frames or frames}, progress=True, threads=args.threads)
    print(result.to_markdown())
    if len(args.seeds) > 1:
        print("\n" + result.to_markdown(by_seed=True))
    if not pretrained:
        print("\n" + demo_note())
    print(f"\nwrote {args.out}/results.json, results.csv, table.md and plots/")
    return 0


def _user_errors() -> tuple[type, ...]:
    """Errors caused by the input (not bugs): shown as one paragraph, exit code 2."""
    from .benchmark import BenchmarkError
    from .datasets import DatasetError
    from .models import WeightsUnavailableError

    return (BenchmarkError, DatasetError, WeightsUnavailableError, FileNotFoundError)


def main(argv: Optional[Sequence[str]] = None) -> int:
    # sam2 draws a progress bar per propagation; ours are explicit, so hide theirs
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    # ValueError: a bad setting caught by a config's validation (tau, image size, ...)
    except (*_user_errors(), ValueError) as err:
        if os.environ.get("LITDEMO_DEBUG"):  # developers: the full traceback
            raise
        print(f"litdemo {args.command}: error: {err}\n(set LITDEMO_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
