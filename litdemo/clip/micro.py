"""Training the micro CLIP: a small open_clip model that litdemo trains itself on synthetic birds.

    litdemo clip-train-micro --out runs/micro-clip          # CPU, one thread: see docs/clip.md

Why: offline there are no pretrained CLIP weights, and a random CLIP guesses at chance. The
micro CLIP knows the synthetic birds' words and pictures, so zero-shot is well above chance on
classes it never saw, yet it mixes up near-twins: the situation LIT is for.

What: open_clip's own CLIP class with the registered config "litdemo-micro-clip" (32 px, 4x4
patches, a 4-block ViT image tower, a 3-block text tower; models.py registers it), trained with
open_clip's own contrastive loss (`open_clip.loss.ClipLoss`) on image-caption pairs of
synthetic.TRAIN_CLASSES only. Every step shows every training class once (one fresh picture,
one random caption each), so no other caption in a batch describes the same class: ClipLoss
treats every other pair in the batch as a negative, and duplicates would be false negatives.
Pictures are drawn at 64 px (the datasets' default) and go through open_clip's own eval
preprocessing, exactly as at test time.

Seeds. Picture and caption of slot s at step t come from numpy's generator keyed by
(_TRAIN_TAG, seed, t, s); the metrics' images from (_EVAL_TAG, seed, class, i). Dataset
images are keyed by (seed, class, index), three numbers, so training images and benchmark
images never share a generator. Held-out classes are never drawn in training at all.

Determinism and resuming. After the seeded init nothing draws from torch's generator (no
dropout), and the data depend only on (seed, step), so on CPU with a fixed thread count the run
is bit-for-bit repeatable. Every `checkpoint_every` steps model, optimizer, step and the loss log
go to out/checkpoint.pt (atomic write). Running the same command again continues from there,
and ends with the same weights as a run that was never interrupted (tested).

Output: out/micro_clip.pt, the weights as an fp16 state dict (so the package stays small; they
are loaded into fp32), and out/metrics.json (zero-shot accuracy, time, hardware, sha256).
"""
from __future__ import annotations

import io
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from ..files import atomic_file
from .models import MICRO_ARCH, sha256_of
from .synthetic import HELDOUT_CLASSES, TRAIN_CLASSES, caption, class_name, draw_bird

CHECKPOINT_FILE = "checkpoint.pt"     # resumable training state
WEIGHTS_FILE = "micro_clip.pt"        # the result: what ships as litdemo/clip/weights/micro_clip.pt
METRICS_FILE = "metrics.json"
_TRAIN_TAG, _EVAL_TAG = 0x6D6963, 0x657661   # "mic", "eva": keys no dataset generator uses


@dataclass
class MicroTrainConfig:
    seed: int = 0
    # Optimizer steps. One step = one picture of each of the 48 training classes.
    steps: int = 1000
    # AdamW as in open_clip's training recipe (betas 0.9/0.98, eps 1e-6, no decay on gains, biases
    # and the temperature), with a linear warmup and a cosine decay to zero. Our choice of values
    # for a model this small, not tuned on the held-out classes.
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.1
    # Size the pictures are drawn at before open_clip's preprocessing (the datasets' default).
    draw_size: int = 64
    # Write the resumable checkpoint every this many steps.
    checkpoint_every: int = 250
    # Pictures per class for the zero-shot accuracy written to metrics.json.
    eval_images_per_class: int = 20

    def __post_init__(self):
        for name in ("steps", "checkpoint_every", "eval_images_per_class"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1.")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError(f"lr={self.lr} must be > 0, weight_decay={self.weight_decay} and "
                             f"warmup_steps={self.warmup_steps} >= 0.")
        if self.draw_size < 16:
            raise ValueError(f"draw_size={self.draw_size} must be >= 16 pixels.")

    def to_dict(self) -> dict:
        return asdict(self)


def build_untrained(seed: int, device: str = "cpu") -> tuple[nn.Module, Callable, Callable]:
    """The micro architecture with seeded random weights, its preprocessing and tokenizer."""
    torch.manual_seed(seed)
    model, _, preprocess = open_clip.create_model_and_transforms(MICRO_ARCH, pretrained=None, device=device)
    return model, preprocess, open_clip.get_tokenizer(MICRO_ARCH)


def training_batch(seed: int, step: int, preprocess: Callable, tokenizer: Callable,
                   draw_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Step `step`'s (48, 3, 32, 32) pictures and (48, context) caption tokens, one per training class."""
    pixels, captions = [], []
    for slot, attributes in enumerate(TRAIN_CLASSES):
        rng = np.random.default_rng([_TRAIN_TAG, seed, step, slot])
        pixels.append(preprocess(Image.fromarray(draw_bird(attributes, draw_size, rng))))
        captions.append(caption(attributes, rng))
    return torch.stack(pixels), tokenizer(captions)


def _optimizer(model: nn.Module, cfg: MicroTrainConfig) -> torch.optim.AdamW:
    # open_clip's main.py exempts 1-d tensors (LayerNorm gains, biases) and the temperature from decay.
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "logit_scale" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "logit_scale" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)


def learning_rate(step: int, cfg: MicroTrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * progress))


def weights_bytes(model: nn.Module) -> bytes:
    """The fp16 state dict as torch.save bytes, written through a buffer: the zip inside torch's
    format is named after the file, so saving to memory keeps the bytes (and sha256) the same
    whatever the output path."""
    state = {k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu()).contiguous()
             for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def load_weights(model: nn.Module, path: Union[str, os.PathLike]) -> nn.Module:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model


@torch.no_grad()
def zero_shot_accuracy(model: nn.Module, preprocess: Callable, tokenizer: Callable,
                       classes: Sequence[tuple[str, str, str]], seed: int, per_class: int,
                       draw_size: int = 64) -> float:
    """Top-1 accuracy among `classes` with the prompt 'a photo of a {class name}.', on fresh
    pictures from the metrics' own generator (never a training or benchmark picture)."""
    model.eval()
    device = next(model.parameters()).device
    text = F.normalize(model.encode_text(tokenizer([f"a photo of a {class_name(c)}." for c in classes]).to(device)),
                       dim=-1)
    right = 0
    for k, attributes in enumerate(classes):
        pics = [preprocess(Image.fromarray(draw_bird(attributes, draw_size,
                                                     np.random.default_rng([_EVAL_TAG, seed, k, i]))))
                for i in range(per_class)]
        image = F.normalize(model.encode_image(torch.stack(pics).to(device)), dim=-1)
        right += int(((image @ text.t()).argmax(dim=-1) == k).sum())
    return right / (len(classes) * per_class)


@dataclass
class MicroTrainResult:
    weights: Path
    metrics: dict


def _save_checkpoint(path: Path, model: nn.Module, optimizer, step: int, losses: list[float], seconds: float,
                     cfg: MicroTrainConfig) -> None:
    with atomic_file(path) as tmp:
        torch.save({"config": cfg.to_dict(), "step": step, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "losses": losses, "seconds": seconds}, tmp)


def _resume(path: Path, model: nn.Module, optimizer, cfg: MicroTrainConfig) -> tuple[int, list[float], float]:
    if not path.is_file():
        return 0, [], 0.0
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["config"] != cfg.to_dict():
        changed = sorted(k for k in state["config"] if state["config"][k] != cfg.to_dict().get(k))
        raise ValueError(f"{str(path)!r} holds a run with other settings ({', '.join(changed)} differ); resume it "
                         "with the same options, or give a new --out folder to start afresh.")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"]), list(state["losses"]), float(state["seconds"])


def train_micro_clip(out_dir: Union[str, os.PathLike], cfg: Optional[MicroTrainConfig] = None,
                     device: str = "cpu", progress: bool = True,
                     stop_after: Optional[int] = None) -> Optional[MicroTrainResult]:
    """Train (or resume training) into `out_dir`; returns the weights path and metrics once all
    `cfg.steps` are done. `stop_after` ends this call after that many steps (a checkpoint is
    written first) and returns None: what a kill after a checkpoint leaves, for tests."""
    cfg = cfg or MicroTrainConfig()
    out_dir = Path(out_dir)
    model, preprocess, tokenizer = build_untrained(cfg.seed, device)
    optimizer = _optimizer(model, cfg)
    start, losses, seconds = _resume(out_dir / CHECKPOINT_FILE, model, optimizer, cfg)
    loss_fn = ClipLoss()
    end = cfg.steps if stop_after is None else min(cfg.steps, start + stop_after)
    bar = tqdm(range(start, end), initial=start, total=cfg.steps, desc="micro CLIP", disable=not progress,
               dynamic_ncols=True)
    began = time.perf_counter()
    model.train()
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        pixels, tokens = training_batch(cfg.seed, step, preprocess, tokenizer, cfg.draw_size)
        image_features, text_features, scale = model(pixels.to(device), tokens.to(device))
        loss = loss_fn(image_features, text_features, scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():   # open_clip's recipe: the temperature may not exceed 100
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(round(float(loss.detach()), 5))
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", lr=f"{optimizer.param_groups[0]['lr']:.1e}")
        done = step + 1
        if done % cfg.checkpoint_every == 0 or done == end:
            _save_checkpoint(out_dir / CHECKPOINT_FILE, model, optimizer, done, losses,
                             seconds + time.perf_counter() - began, cfg)
    bar.close()
    seconds += time.perf_counter() - began
    if end < cfg.steps:
        return None
    return _finish(out_dir, model, preprocess, tokenizer, cfg, losses, seconds, device)


def _finish(out_dir: Path, model: nn.Module, preprocess: Callable, tokenizer: Callable, cfg: MicroTrainConfig,
            losses: list[float], seconds: float, device: str) -> MicroTrainResult:
    data = weights_bytes(model)
    weights = out_dir / WEIGHTS_FILE
    with atomic_file(weights) as tmp:
        tmp.write_bytes(data)
    load_weights(model, weights)   # measure the fp16 weights that ship, not the fp32 ones in memory
    accuracy = {name: round(zero_shot_accuracy(model, preprocess, tokenizer, classes, cfg.seed,
                                               cfg.eval_images_per_class, cfg.draw_size), 4)
                for name, classes in (("train_classes", TRAIN_CLASSES), ("heldout_classes", HELDOUT_CLASSES))}
    metrics = {
        "architecture": MICRO_ARCH, "config": cfg.to_dict(), "sha256": sha256_of(weights),
        "bytes": len(data), "parameters": sum(p.numel() for p in model.parameters()),
        "zero_shot_accuracy": accuracy,
        "chance": {"train_classes": round(1 / len(TRAIN_CLASSES), 4), "heldout_classes": round(1 / len(HELDOUT_CLASSES), 4)},
        "loss_first_20_mean": round(float(np.mean(losses[:20])), 4),
        "loss_last_100_mean": round(float(np.mean(losses[-100:])), 4),
        "train_seconds": round(seconds, 1), "device": device, "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
        "open_clip": open_clip.__version__,
    }
    with atomic_file(out_dir / METRICS_FILE) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1))
    return MicroTrainResult(weights=weights, metrics=metrics)


def config_from_args(**values) -> MicroTrainConfig:
    known = {f.name for f in fields(MicroTrainConfig)}
    return MicroTrainConfig(**{k: v for k, v in values.items() if k in known and v is not None})
