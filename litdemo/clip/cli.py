"""`litdemo clip-bench`: the CLIP LIT benchmark from the command line.

    litdemo clip-bench --dataset synthetic --modes zero-shot lit-ft --seeds 0 1 2 --out runs/clip
    litdemo clip-bench --dataset cub --root data/CUB_200_2011 --model vit-b-16 --stream-length 40
    litdemo clip-bench --dataset torchvision-cars --root data --model vit-b-16
    litdemo clip-bench --dataset hf --root data/cub_parquet --split test --label-column label
    litdemo clip-train-micro --out runs/micro-clip      # retrain the shipped micro CLIP

The lead's CLI calls `register_cli(subparsers)`; `python -m litdemo.clip.cli ...` works alone.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .config import MODES, ClipLitConfig
from .datasets import DATASETS
from .models import MODELS


def register_cli(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("clip-bench", help="simulated-user benchmark of LIT on CLIP (baseline vs LIT)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="synthetic", choices=DATASETS,
                   help="dataset layout or source: synthetic, an on-disk layout (folder, cub, cars, sun397), "
                        "torchvision's (torchvision-cars, torchvision-sun397) or Hugging Face datasets (hf) "
                        "(default: synthetic)")
    p.add_argument("--root", help="dataset folder (not needed for synthetic); for hf a Hub name (org/name), "
                                  "a local data folder or a save_to_disk folder")
    p.add_argument("--split", default="test",
                   help="train | test | all (default: test); for hf any split the dataset has, e.g. validation")
    p.add_argument("--image-column", help="hf only: the image column (default: the one Image feature)")
    p.add_argument("--label-column", help="hf only: the label column (default: the one ClassLabel feature)")
    p.add_argument("--model", default="micro", choices=list(MODELS),
                   help="registry model; 'micro' ships with litdemo (trained on synthetic images only), "
                        "*-untrained ones have random weights (default: micro)")
    p.add_argument("--weights", dest="weights_path", help="local open_clip checkpoint file for --model")
    p.add_argument("--cache-dir", help="open_clip / Hugging Face cache folder holding the weights")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads; 1 is much faster for tiny models on busy shared cores")
    p.add_argument("--modes", nargs="+", default=["zero-shot", "lit-lora"], choices=MODES)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--stream-length", type=int, default=60)
    p.add_argument("--eval-size", type=int, default=100, help="held-out images for the before/after confusion")
    p.add_argument("--num-classes", type=int, default=None,
                   help="synthetic only (default: 8 with --classes random, else the whole set)")
    p.add_argument("--images-per-class", type=int, default=20, help="synthetic only")
    p.add_argument("--classes", default="random", choices=("random", "heldout", "train"),
                   help="synthetic only: a seeded pick of all attribute combinations (random), or the micro "
                        "CLIP's held-out / training classes (default: random)")
    defaults = ClipLitConfig()
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--max-steps", type=int, default=defaults.max_steps)
    p.add_argument("--replay-size", type=int, default=defaults.replay_size)
    p.add_argument("--lora-rank", type=int, default=defaults.lora_rank)
    p.add_argument("--lora-alpha", type=float, default=defaults.lora_alpha)
    p.add_argument("--lora-encoders", nargs="+", default=list(defaults.lora_encoders), choices=("vision", "text"))
    p.add_argument("--lora-projection", default=defaults.lora_projections[0], choices=("in_proj",),
                   help="in_proj = packed q/k/v (the only one a LoRA reaches in open_clip's attention)")
    p.add_argument("--template", action="append", dest="templates",
                   help="prompt template with {} (repeatable; default: the dataset's usual one)")
    p.add_argument("--out", help="folder for results.csv/json/md and PNG plots")
    p.set_defaults(func=run_cli)
    register_train_cli(subparsers)
    return p


def register_train_cli(subparsers) -> argparse.ArgumentParser:
    from .micro import MicroTrainConfig

    d = MicroTrainConfig()
    p = subparsers.add_parser("clip-train-micro", help="train the micro CLIP on synthetic birds (resumable)",
                              description="Train litdemo's micro CLIP (open_clip architecture litdemo-micro-clip) "
                                          "contrastively on synthetic image-caption pairs. Writes OUT/micro_clip.pt "
                                          "and OUT/metrics.json; rerun the same command to resume after a kill.")
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt, micro_clip.pt, metrics.json)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimizer steps (default {d.steps})")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--eval-images-per-class", type=int, default=d.eval_images_per_class)
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: the shipped weights were made with 1; results are "
                        "bit-for-bit repeatable only with the same count)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.set_defaults(func=run_train_cli)
    return p


def run_train_cli(args: argparse.Namespace) -> int:
    import json

    import torch

    from .micro import config_from_args, train_micro_clip

    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cfg = config_from_args(seed=args.seed, steps=args.steps, lr=args.lr, warmup_steps=args.warmup_steps,
                           checkpoint_every=args.checkpoint_every, eval_images_per_class=args.eval_images_per_class)
    result = train_micro_clip(args.out, cfg, device=device, progress=not args.no_progress)
    print(json.dumps(result.metrics, indent=1))
    print(f"wrote {result.weights} (sha256 {result.metrics['sha256']})")
    return 0


def run_cli(args: argparse.Namespace) -> int:
    import torch

    from .bench import run_clip_benchmark
    from .datasets import load_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    ds = load_dataset(args.dataset, args.root, split=args.split, **_dataset_options(args))
    config = ClipLitConfig(lr=args.lr, max_steps=args.max_steps, replay_size=args.replay_size,
                           lora_rank=args.lora_rank, lora_alpha=args.lora_alpha,
                           lora_encoders=tuple(args.lora_encoders), lora_projections=(args.lora_projection,),
                           templates=tuple(args.templates or ds.templates))
    result = run_clip_benchmark(ds, model=args.model, modes=args.modes, seeds=args.seeds,
                                stream_length=args.stream_length, eval_size=args.eval_size, config=config,
                                weights_path=args.weights_path, cache_dir=args.cache_dir, device=device,
                                out_dir=args.out, progress=lambda m: print(m, file=sys.stderr, flush=True))
    if result.info["untrained"]:
        print("NOTE: model has random weights (untrained): a mechanics check, not the paper's numbers.")
    elif args.model == "micro" and not args.weights_path:
        print("NOTE: micro CLIP, trained on synthetic images (it knows synthetic birds only): LIT on a CLIP that "
              "knows something, not the paper's numbers. See docs/clip.md, 'Model card: micro CLIP'.")
    print(result.to_markdown())
    if args.out:
        print(f"wrote {args.out}/results.csv, results.json, results.md and PNG plots")
    return 0


def _dataset_options(args: argparse.Namespace) -> dict:
    if args.dataset == "synthetic":
        default = 8 if args.classes == "random" else None
        return {"num_classes": args.num_classes or default,
                "images_per_class": args.images_per_class, "classes": args.classes}
    # Only what was given, so a column option on a dataset without columns gets load_dataset's clear error.
    columns = {"image_column": args.image_column, "label_column": args.label_column}
    return {k: v for k, v in columns.items() if v is not None}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="litdemo")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
