"""Speed of the LIT core against raw SAM2, measured in one process.

    python benchmarks/bench_core.py                 # tiny at 1024 and 512 px, CPU (or CUDA if present)
    python benchmarks/bench_core.py --sizes 512 --frames 6

Prints, per image size:
  * propagation seconds/frame of a LitSession (LIT-LoRA mode: decoder inputs captured) vs raw
    sam2 `propagate_in_video` on the same frames and weights -> the overhead ratio (target <= 1.05);
  * one correction's training time for the first correction (up to 100 steps) and the median of
    later ones (up to 20 steps, batch = new sample + replay), under four schedules: the paper's
    with early stopping, the paper's with every step, LIT-LoRA capped by `max_train_seconds`
    (--cap, default 1.0 s), and LIT-FT with early stopping; the target is <= 1.0 s at 1024 px.
Random weights are used (no download needed): step times do not depend on the weights, but
when early stopping ends training does. A random decoder gives a rank-4 LoRA nothing to fit,
so its early stopping rarely fires here; LIT-FT can fit, so its row shows what early stopping
does when the decoder learns the correction.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from litdemo.config import LitConfig
from litdemo.datasets import make_synthetic_video
from litdemo.learner import ObjectLearner
from litdemo.models import build_architecture, pick_device
from litdemo.session import LitSession
from litdemo.training import TrainingSample


def raw_sam2_predictor(model, image_size, device):
    """sam2's own video predictor class with the same weights (the baseline)."""
    from hydra import compose
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = compose(config_name="configs/sam2.1/sam2.1_hiera_t.yaml", overrides=[
        f"++model.image_size={image_size}", "++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
        "++model.binarize_mask_from_pts_for_mem_enc=true",
        "++model.add_all_frames_to_correct_as_cond=true"])
    OmegaConf.resolve(cfg)
    raw = instantiate(cfg.model, _recursive_=True)
    raw.load_state_dict(model.state_dict())
    return raw.to(device).eval()


def time_raw(raw, jpeg_dir, first_mask):
    state = raw.init_state(str(jpeg_dir))
    raw.add_new_mask(state, 0, 1, first_mask)
    start = time.perf_counter()
    n = sum(1 for _ in raw.propagate_in_video(state))
    return (time.perf_counter() - start) / n


def time_lit(model, frames, first_mask, cfg):
    session = LitSession(model, frames, cfg)
    session.prompt(0, 1, mask=first_mask)
    start = time.perf_counter()
    n = sum(1 for _ in session.propagate())
    return (time.perf_counter() - start) / n, session


def correction_times(session, masks, cfg, n_later):
    """Train on a first correction, then `n_later` more, on the session's captured inputs."""
    learner = ObjectLearner(session.predictor.sam_mask_decoder, session._prompt, cfg)
    curves = []
    frames = sorted(f for (_, f) in session.captures._items)
    for frame in frames[: n_later + 1]:
        sample = TrainingSample(frame, session.captures.get(1, frame), session._decoder_target(masks[frame]))
        curve, _ = learner.learn(sample)
        curves.append(curve)
    return curves


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 512])
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--cap", type=float, default=1.0, help="max_train_seconds for the capped schedule")
    args = parser.parse_args()
    device = pick_device(args.device)
    print(f"device: {device}, torch threads: {torch.get_num_threads()}, random-init sam2.1 tiny")
    sample = make_synthetic_video(num_frames=args.frames, height=480, width=854, seed=0)
    frames, masks = sample.frames, [sample.gt_mask(1, t) for t in range(args.frames)]
    for size in args.sizes:
        torch.manual_seed(0)
        model = build_architecture("tiny", image_size=size).to(device).eval()
        model.untrained = True
        raw = raw_sam2_predictor(model, size, device)
        with tempfile.TemporaryDirectory() as tmp:
            for t, f in enumerate(frames):
                Image.fromarray(f).save(Path(tmp) / f"{t:05d}.jpg", quality=95)
            raw_times, lit_times = [], []
            for _ in range(args.repeats):  # interleaved, best of N: the machine's noise hits both alike
                raw_times.append(time_raw(raw, tmp, masks[0]))
                lit_s, session = time_lit(model, frames, masks[0], LitConfig(mode="lit-lora"))
                lit_times.append(lit_s)
        r, l = min(raw_times), min(lit_times)
        mb = session.captures.nbytes / max(1, len(session.captures)) / 2**20
        print(f"\n== {size} px ==")
        print(f"propagation s/frame: raw sam2 {r:.3f}, LIT session {l:.3f}, ratio {l / r:.3f} (target <= 1.05)")
        print(f"captured decoder inputs: {mb:.2f} MB/frame (float16) -> {100 * mb:.0f} MB for 100 frames")
        schedules = (("LIT-LoRA, paper schedule, early stopping", LitConfig()),
                     ("LIT-LoRA, paper schedule, all steps", LitConfig(early_stop_iou=1.0, early_stop_patience=10**6)),
                     (f"LIT-LoRA, capped at {args.cap:g} s", LitConfig(max_train_seconds=args.cap)),
                     ("LIT-FT (can fit a random decoder), early stopping", LitConfig(mode="lit-ft")))
        for label, cfg in schedules:
            report(label, correction_times(session, masks, cfg, n_later=min(4, args.frames - 3)))


def report(label, curves):
    """One schedule's line: first and later corrections, why they stopped, time per sample-step."""
    first, later = curves[0], curves[1:]
    per_sample_step = statistics.median(c.seconds / len(c.loss) / c.batch_size for c in curves)
    stops = ", ".join(sorted({c.stop_reason for c in curves}))
    print(f"{label}:\n"
          f"    first correction {first.seconds:.2f} s ({first.updates} updates, batch IoU {max(first.iou):.2f}); "
          f"later median {statistics.median(c.seconds for c in later):.2f} s "
          f"({statistics.median(c.updates for c in later):.0f} updates, batch up to {later[-1].batch_size}); "
          f"median over all {statistics.median(c.seconds for c in curves):.2f} s (target <= 1.0 s at 1024)\n"
          f"    {per_sample_step * 1000:.0f} ms per step and sample; stopped by: {stops}")


if __name__ == "__main__":
    main()
