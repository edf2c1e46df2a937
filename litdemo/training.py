"""The LIT training loop: what happens, in a fraction of a second, after every correction.

One correction = one sample: the decoder inputs SAM2 had on that frame, no prompt, and the
corrected mask as target. We train the adapted decoder on it together with a replay of up to
`replay_size` earlier corrections, with the loss SAM2 itself was trained with
(20 x sigmoid focal + 1 x dice), AdamW, a larger learning rate and more steps for the first
correction, early stopping, and we keep the best step by IoU on the training batch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .adapters import load_trainable_state, trainable_parameters, trainable_state, training_mode
from .config import LitConfig
from .decoder import DecoderInputs, EmptyPrompt, run_decoder


@dataclass
class TrainingSample:
    frame_idx: int
    inputs: DecoderInputs   # batch of 1, stored compactly (float16, CPU)
    target: torch.Tensor    # (1, 1, S/4, S/4) float {0, 1}: the corrected mask at the decoder's resolution


@dataclass
class TrainingCurve:
    loss: list[float] = field(default_factory=list)  # per step, on the whole batch
    iou: list[float] = field(default_factory=list)   # per step, mean IoU of the shown masks on the batch
    best_step: int = -1        # the step whose weights were kept
    batch_size: int = 0        # 1 new sample + replayed ones
    seconds: float = 0.0       # wall time of the whole update
    stopped_early: bool = False

    def to_dict(self) -> dict:
        return dict(loss=self.loss, iou=self.iou, best_step=self.best_step, batch_size=self.batch_size,
                    seconds=self.seconds, stopped_early=self.stopped_early)


def sigmoid_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """Per-sample mean focal loss (Lin et al. 2017), as in SAM2's training; logits/target (B, 1, h, w)."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(1).mean(1)  # (B,)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample soft dice loss with +1 smoothing (as in SAM2's training); (B, 1, h, w) -> (B,)."""
    prob = logits.sigmoid().flatten(1)
    target = target.flatten(1)
    return 1 - (2 * (prob * target).sum(1) + 1) / (prob.sum(1) + target.sum(1) + 1)


def lit_loss(out, target: torch.Tensor, cfg: LitConfig) -> torch.Tensor:
    """20 x focal + 1 x dice on the mask, plus SAM2's object-score BCE (see LitConfig)."""
    loss = cfg.focal_weight * sigmoid_focal_loss(out.mask_logits, target, cfg.focal_alpha, cfg.focal_gamma)
    loss = loss + cfg.dice_weight * dice_loss(out.mask_logits, target)
    if cfg.object_score_weight > 0:
        present = (target.flatten(1).amax(1, keepdim=True) > 0).float()  # (B, 1)
        loss = loss + cfg.object_score_weight * F.binary_cross_entropy_with_logits(
            out.object_score, present, reduction="none")[:, 0]
    return loss.mean()


def batch_iou(out, target: torch.Tensor) -> float:
    """Mean IoU of the masks SAM2 would show vs the targets; empty vs empty counts as 1."""
    pred = out.binary().flatten(1)
    gt = target.flatten(1) > 0.5
    inter = (pred & gt).sum(1).float()
    union = (pred | gt).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)).mean().item()


def train_on_correction(decoder: torch.nn.Module, prompt: EmptyPrompt, new: TrainingSample,
                        replay: list[TrainingSample], cfg: LitConfig, first: bool,
                        on_step: Optional[Callable[[int, float, float], None]] = None) -> TrainingCurve:
    """Update `decoder` in place on one new correction (+ replay). Returns its training curve.

    on_step(step, loss, iou) is called after each scored step (e.g. to draw the curve live).
    """
    start = time.perf_counter()
    device = prompt.image_pe.device
    batch = [new] + replay[-cfg.replay_size:] if cfg.replay_size else [new]
    inputs = DecoderInputs.cat([s.inputs for s in batch]).to(device)   # (B, ...) float32
    target = torch.cat([s.target for s in batch]).to(device)           # (B, 1, S/4, S/4)
    lr, max_steps = (cfg.lr_first, cfg.steps_first) if first else (cfg.lr_later, cfg.steps_later)
    optimizer = torch.optim.AdamW(trainable_parameters(decoder), lr=lr, weight_decay=cfg.weight_decay)

    curve = TrainingCurve(batch_size=len(batch))
    best_iou, best_state = -1.0, None
    best_loss, since_improved = float("inf"), 0
    with torch.enable_grad(), training_mode(decoder):
        for step in range(max_steps):
            out = run_decoder(decoder, prompt, inputs)
            loss = lit_loss(out, target, cfg)
            iou = batch_iou(out, target)  # IoU of the weights *before* this step's update
            curve.loss.append(loss.item())
            curve.iou.append(iou)
            if on_step is not None:
                on_step(step, curve.loss[-1], iou)
            if iou > best_iou:
                best_iou, best_state, curve.best_step = iou, trainable_state(decoder), step
            if iou >= cfg.early_stop_iou:
                curve.stopped_early = True
                break
            if loss.item() < best_loss - 1e-4:
                best_loss, since_improved = loss.item(), 0
            else:
                since_improved += 1
                if since_improved >= cfg.early_stop_patience:
                    curve.stopped_early = True
                    break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        else:
            # The last update has not been scored yet: score it so it can be kept.
            with torch.no_grad():
                out = run_decoder(decoder, prompt, inputs)
                iou = batch_iou(out, target)
            curve.loss.append(lit_loss(out, target, cfg).item())
            curve.iou.append(iou)
            if iou > best_iou:
                best_iou, best_state, curve.best_step = iou, None, len(curve.iou) - 1
    if best_state is not None:
        load_trainable_state(decoder, best_state)
    curve.seconds = time.perf_counter() - start
    return curve
