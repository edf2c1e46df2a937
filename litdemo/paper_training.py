"""The paper protocol's adapter update: how the LIT author's evaluation code trains on a correction.

Learned from YoungXinyu1802/sam2_demo (`SAM2VideoPredictor.train_lora` in
sam2/sam2_video_predictor.py and `train_with_random_split_each_epoch` in
sam2/modeling/sam/lora.py), written anew:

- Samples: a new adapter trains on the new sample alone; an existing adapter trains on the new
  sample plus the `replay_best` (5) samples of its own buffer with the highest stored IoU
  (`BufferedSample.iou`: the best epoch score of the update that added the sample, i.e. the mean
  IoU over all of that update's samples, not the sample's own; or, for an accepted suggestion,
  its IoU against the ground truth; stored once, never recomputed).
- Schedule: a new adapter 100 epochs at lr 1e-4, an existing one 20 epochs at 5e-5, each update
  with a fresh AdamW (no weight decay). An epoch is one pass over the samples in a random order
  with one optimizer step per sample (batch 1): a 6-sample update makes up to 120 steps.
- Score: after each epoch, the mean IoU over the samples of the masks the adapter shows, at the
  video's resolution with void pixels left out.
- Early stopping (checked after each epoch, epochs counted from 0): stop when the best IoU has
  not improved for 10 epochs once it exceeds 0.6; at epoch 50 if the best IoU is below 0.2; at
  epoch 10 if it is still exactly 0.
- Kept weights: the best epoch's. The author's code means to keep them but keeps the last
  epoch's (it rebinds a local name); `LitConfig.author_quirks=True` reproduces that and the
  author's loss scaling (the focal term summed over the image's columns instead of averaged:
  x image_size, ~1024x at 1024 px). docs/benchmark.md lists every difference.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, Optional

import numpy as np
import torch

from .adapters import load_trainable_state, trainable_parameters, trainable_state, training_mode
from .config import LitConfig
from .decoder import run_decoder, to_video_mask
from .metrics import iou
from .training import TrainingCurve, TrainingSample, lit_loss


@dataclass(frozen=True)
class PaperSchedule:
    """The author's fixed values (tools/online_eval.py, train_lora, train_with_random_split_each_epoch)."""
    epochs_first: int = 100        # a new adapter ...
    lr_first: float = 1e-4         # ... at this learning rate
    epochs_later: int = 20         # an existing adapter ...
    lr_later: float = 5e-5         # ... at this one
    replay_best: int = 5           # buffered samples replayed with each new one (highest stored IoU)
    patience: int = 10             # epochs without a better IoU before stopping ...
    patience_above_iou: float = 0.6  # ... counted only once the best IoU exceeds this
    low_iou_epoch: int = 50        # give up at this epoch if the best IoU is below low_iou
    low_iou: float = 0.2
    zero_iou_epoch: int = 10       # give up at this epoch if the best IoU is still 0
    new_adapter_at_or_below: float = 0.4  # a correction starts a new adapter when the best one scores <= this


PAPER_SCHEDULE = PaperSchedule()


@dataclass
class BufferedSample:
    """One frame in an adapter's buffer: what it trains on and how it is ranked for replay."""
    sample: TrainingSample         # decoder inputs + target at the decoder's resolution
    truth: np.ndarray              # (H, W) bool target at the video's resolution (void as background)
    void: Optional[np.ndarray]     # (H, W) bool pixels left out of its IoU, or None
    iou: float                     # the ranking value, stored when the sample joined the buffer


def replay_set(buffer: list[BufferedSample], new: BufferedSample, schedule: PaperSchedule = PAPER_SCHEDULE
               ) -> list[BufferedSample]:
    """The new sample plus the buffer's `replay_best` samples with the highest stored IoU
    (ties keep buffer order: the earlier sample first)."""
    best = sorted(buffer, key=lambda s: s.iou, reverse=True)[:schedule.replay_best]
    return best + [new]


def sample_iou(decoder: torch.nn.Module, prompt, item: BufferedSample) -> float:
    """IoU of the mask the decoder shows on a sample vs its truth, at the video's resolution, void left out."""
    with torch.no_grad():
        out = run_decoder(decoder, prompt, item.sample.inputs.to(prompt.image_pe.device))
    height, width = item.truth.shape
    shown = to_video_mask(out, height, width)[0].cpu().numpy()
    return iou(shown, item.truth, void=item.void)


def train_paper_update(decoder: torch.nn.Module, prompt, samples: list[BufferedSample], first: bool,
                       cfg: LitConfig, schedule: PaperSchedule = PAPER_SCHEDULE,
                       on_step: Optional[Callable[[int, float, float], None]] = None) -> tuple[TrainingCurve, float]:
    """Train `decoder` in place on `samples`; returns (curve with one entry per epoch, best epoch IoU).

    on_step(epoch, mean loss, IoU) is called after each epoch.
    """
    start = time.perf_counter()
    device = prompt.image_pe.device
    lr, epochs = (schedule.lr_first, schedule.epochs_first) if first else (schedule.lr_later, schedule.epochs_later)
    optimizer = torch.optim.AdamW(trainable_parameters(decoder), lr=lr, weight_decay=cfg.weight_decay)
    loss_cfg = _loss_config(cfg, samples[0].sample.target)
    batches = [(s.sample.inputs.to(device), s.sample.target.to(device)) for s in samples]

    curve = TrainingCurve(batch_size=len(samples))
    best_iou, best_state, since_best = -1.0, None, 0
    for epoch in range(epochs):
        losses = []
        with torch.enable_grad(), training_mode(decoder):
            for i in torch.randperm(len(batches)).tolist():   # a shuffled pass, batch 1
                inputs, target = batches[i]
                loss = lit_loss(run_decoder(decoder, prompt, inputs), target, loss_cfg)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
        score = float(np.mean([sample_iou(decoder, prompt, s) for s in samples]))
        curve.loss.append(float(np.mean(losses)))
        curve.iou.append(score)
        if on_step is not None:
            on_step(epoch, curve.loss[-1], score)
        if score > best_iou:
            best_iou, best_state, curve.best_step, since_best = score, trainable_state(decoder), epoch, 0
        else:
            since_best += 1
        curve.stop_reason = stop_reason(epoch, best_iou, since_best, schedule)
        if curve.stop_reason:
            break
    if not curve.stop_reason:
        curve.stop_reason = "steps"
    if cfg.author_quirks:
        curve.best_step = len(curve.iou) - 1   # the author's code keeps the last epoch's weights
    else:
        load_trainable_state(decoder, best_state)
    curve.seconds = time.perf_counter() - start
    return curve, best_iou


def stop_reason(epoch: int, best_iou: float, since_best: int, schedule: PaperSchedule = PAPER_SCHEDULE) -> str:
    """The author's early stopping after `epoch` (0-based): "plateau", "low_iou", "zero_iou" or ""."""
    if since_best >= schedule.patience and best_iou > schedule.patience_above_iou:
        return "plateau"
    if epoch == schedule.low_iou_epoch and best_iou < schedule.low_iou:
        return "low_iou"
    if epoch == schedule.zero_iou_epoch and best_iou == 0:
        return "zero_iou"
    return ""


def _loss_config(cfg: LitConfig, target: torch.Tensor) -> LitConfig:
    """The loss weights of an update. With author_quirks the focal term is scaled as the
    author's code computes it: its per-sample focal loss averages over one image axis and sums
    over the other (x image_size = 4 x the decoder's resolution); the dice term is unchanged."""
    if not cfg.author_quirks:
        return cfg
    image_size = 4 * target.shape[-1]
    return replace(cfg, focal_weight=cfg.focal_weight * image_size)
