"""Speed of LIT on CLIP: seconds per correction update, and prediction images/s with vs without LoRA.

    python benchmarks/bench_clip.py                 # ViT-B-32-sized and small model, ~2-3 min on 2 CPU cores
    python benchmarks/bench_clip.py --models vit-b-16 --weights ...   # any registry model

Models have random weights by default (no download): speed does not depend on the weights,
so the numbers hold for the pretrained checkpoints of the same architecture. Uses CUDA when
available. Ratios are against a baseline measured in the same process (zero-shot prediction).
LoRA prediction goes through adapter.merged_lora (W + BA folded in for the call, cached between
corrections), as in the app; corrections train through peft's parametrization.
"""
from __future__ import annotations

import argparse
import copy
import logging
import random
import statistics
import time

import torch

from litdemo.clip import ClipLitConfig, ClipLitSession, build_classifier
from litdemo.clip.synthetic import SyntheticFineGrained
from litdemo.clip.training import Example, train_on_correction


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_predictions(sessions: list[ClipLitSession], images, device: str, repeats: int) -> list[float]:
    """Images per second for interactive prediction (one image per call, as in the app), for each
    session. Sessions take turns within every repeat, so a load change on a shared machine hits
    all of them alike and the ratio stays fair."""
    seconds = [0.0] * len(sessions)
    for s in sessions:
        s.predict(images[0], "warmup")
    for r in range(repeats):
        for j, s in enumerate(sessions):
            sync(device)
            start = time.perf_counter()
            for k, im in enumerate(images):
                s.predict(im, f"p{r}-{k}")
            sync(device)
            seconds[j] += time.perf_counter() - start
    return [repeats * len(images) / t for t in seconds]


def time_corrections(session: ClipLitSession, data, n: int, device: str) -> list[float]:
    """Seconds per correction update (training only), with a full replay batch and a fixed
    number of steps (early stopping off) so every update does the same work."""
    clf, cfg = session.classifier, session.config
    pixels = clf.to_pixels([data.image(i) for i in range(cfg.replay_size + n)])   # (R + n, 3, S, S)
    memory = [Example(pixels[i], data.labels[i]) for i in range(cfg.replay_size)]
    times = []
    for k in range(n):
        example = Example(pixels[cfg.replay_size + k], data.labels[cfg.replay_size + k])
        sync(device)
        start = time.perf_counter()
        train_on_correction(clf, session._params, example, memory, cfg, random.Random(k))
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["vit-b-32-untrained", "vit-s-32-untrained"])
    parser.add_argument("--weights", default=None, help="local checkpoint (single model only)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps per timed correction")
    parser.add_argument("--replay", type=int, default=4, help="replayed corrections per step")
    parser.add_argument("--corrections", type=int, default=2, help="timed corrections per model")
    parser.add_argument("--predict-images", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        args.repeats *= 10
        args.corrections *= 5
    print(f"device={args.device} ({torch.cuda.get_device_name() if args.device == 'cuda' else 'CPU'}), "
          f"torch threads={torch.get_num_threads()}, steps/correction={args.steps}, "
          f"batch=1+{args.replay} replayed, classes={args.classes}")
    data = SyntheticFineGrained(num_classes=args.classes, images_per_class=2, image_size=96)
    images = [data.image(i) for i in range(args.predict_images)]
    rows = []
    for name in args.models:
        clf = build_classifier(data.class_names, name, weights_path=args.weights, device=args.device)
        params = sum(p.numel() for p in clf.model.visual.parameters())
        print(f"\n{name}: {clf.clip.label}, image encoder {params / 1e6:.1f}M params, "
              f"{clf.clip.preprocess.transforms[1].size} input")
        cfg = dict(max_steps=args.steps, replay_size=args.replay, early_stop_prob=1.0,
                   early_stop_patience=args.steps + 1)
        zero = ClipLitSession(copy.deepcopy(clf), ClipLitConfig(mode="zero-shot", **cfg))
        lora = ClipLitSession(clf, ClipLitConfig(mode="lit-lora", **cfg))   # LoRA injected into clf
        base_ips, lora_ips = time_predictions([zero, lora], images, args.device, args.repeats)
        secs = time_corrections(lora, data, args.corrections, args.device)
        n_lora = sum(p.numel() for p in lora._params)
        row = {"model": name, "weights": clf.clip.weights, "lora_params": n_lora,
               "predict_img_s": base_ips, "predict_img_s_lora": lora_ips, "ratio": lora_ips / base_ips,
               "s_per_correction": statistics.median(secs), "s_per_step": statistics.median(secs) / args.steps}
        rows.append(row)
        print(f"  prediction: {base_ips:.1f} img/s zero-shot, {lora_ips:.1f} img/s with LoRA "
              f"(ratio {row['ratio']:.2f}; 1.0 = no slowdown)")
        print(f"  correction update: {row['s_per_correction']:.2f} s median over {len(secs)} "
              f"({row['s_per_step']:.3f} s/step, {n_lora} LoRA params)")
    print("\n| model | weights | LoRA params | img/s zero-shot | img/s LoRA | ratio | s/correction | s/step |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['weights']} | {r['lora_params']} | {r['predict_img_s']:.1f} | "
              f"{r['predict_img_s_lora']:.1f} | {r['ratio']:.2f} | {r['s_per_correction']:.2f} | "
              f"{r['s_per_step']:.3f} |")
    if any("untrained" in r["weights"] for r in rows):
        print("\nNOTE: random-init weights (untrained); timings depend on the architecture only.")


if __name__ == "__main__":
    main()
