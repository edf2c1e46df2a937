"""The LIT training loop: what happens, in a fraction of a second, after every correction.

One correction = one sample: the decoder inputs SAM2 had on that frame, no prompt, and the
corrected mask as target. We train the adapted decoder on it together with a replay of up to
`replay_size` earlier corrections, with the loss SAM2 itself was trained with
(20 x sigmoid focal + 1 x dice), AdamW, a larger learning rate and more steps for the first
correction, early stopping, and we keep the best step (LitConfig.best_step_rule says how steps rank).
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
    # Why it ended: "fit" (batch IoU reached early_stop_iou), "plateau" (loss stalled for
    # early_stop_patience steps), "time" (max_train_seconds), or "steps" (the schedule ran out).
    stop_reason: str = ""

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason in ("fit", "plateau", "time")

    @property
    def updates(self) -> int:
        return updates_in(self.to_dict())

    def to_dict(self) -> dict:
        return dict(loss=self.loss, iou=self.iou, best_step=self.best_step, batch_size=self.batch_size,
                    seconds=self.seconds, stop_reason=self.stop_reason, stopped_early=self.stopped_early)


def updates_in(curve: dict) -> int:
    """Optimizer steps of a curve (as stored in a history): every scored step but the last
    is followed by one."""
    return max(0, len(curve["loss"]) - 1)


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
    """20 x focal + 1 x dice on the mask, plus SAM2's object-score BCE (see LitConfig).

    The mask terms score the shown mask, or the mean over every candidate mask when
    `cfg.trains_all_candidates` (see LitConfig.train_all_candidates).
    """
    logits, targets = out.mask_logits, target
    if cfg.trains_all_candidates and out.candidates is not None:
        num = out.candidates.shape[1]
        logits = out.candidates.flatten(0, 1).unsqueeze(1)   # (B*M, 1, h, w)
        targets = target.repeat_interleave(num, dim=0)       # (B*M, 1, h, w)
    mask_loss = cfg.focal_weight * sigmoid_focal_loss(logits, targets, cfg.focal_alpha, cfg.focal_gamma)
    mask_loss = mask_loss + cfg.dice_weight * dice_loss(logits, targets)
    loss = mask_loss.view(target.shape[0], -1).mean(1)      # (B,): candidates averaged per sample
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

    Step k scores the weights left by update k-1 (step 0 scores the weights before training),
    then makes update k; the best-scoring weights are kept at the end.
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
    best_score, best_state = None, None
    plateau = _Plateau(cfg.early_stop_patience)
    with torch.enable_grad(), training_mode(decoder):
        for step in range(max_steps + 1):   # the extra pass scores the last update
            with torch.set_grad_enabled(step < max_steps):   # that pass is never backpropagated
                out = run_decoder(decoder, prompt, inputs)
                loss = lit_loss(out, target, cfg)
            iou = batch_iou(out, target)
            curve.loss.append(loss.item())
            curve.iou.append(iou)
            if on_step is not None:
                on_step(step, curve.loss[-1], iou)
            score = step_score(cfg.best_step_rule, iou, curve.loss[-1])
            if best_state is None or replaces(cfg.best_step_rule, score, best_score):
                best_score, best_state, curve.best_step = score, trainable_state(decoder), step
            curve.stop_reason = _stop_reason(step, max_steps, iou, plateau.stalled(curve.loss[-1]),
                                             time.perf_counter() - start, cfg)
            if curve.stop_reason:
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    load_trainable_state(decoder, best_state)
    curve.seconds = time.perf_counter() - start
    return curve


def step_score(rule: str, iou: float, loss: float) -> tuple:
    """How `rule` ranks a scored step (higher is better; see LitConfig.best_step_rule)."""
    if rule == "iou":
        return (iou,)
    if rule == "iou-loss":
        return (iou, -loss)
    if rule == "loss":
        return (-loss,)
    return ()  # "last": every step replaces the one before


def replaces(rule: str, score: tuple, best: tuple) -> bool:
    """Whether a later step's score replaces the best so far: strictly better, or any step under "last"."""
    return rule == "last" or score > best


class _Plateau:
    """Counts steps since the loss last improved (by more than a hair)."""

    def __init__(self, patience: int):
        self.patience, self.best, self.since = patience, float("inf"), 0

    def stalled(self, loss: float) -> bool:
        if loss < self.best - 1e-4:
            self.best, self.since = loss, 0
        else:
            self.since += 1
        return self.since >= self.patience


def _stop_reason(step: int, max_steps: int, iou: float, stalled: bool, elapsed: float, cfg: LitConfig) -> str:
    """Why training ends after scoring `step`, or "" to go on."""
    if iou >= cfg.early_stop_iou:
        return "fit"
    if stalled:
        return "plateau"
    if step == max_steps:
        return "steps"
    # Stop before a step that would overrun the wall-time cap; `elapsed / (step + 1)` is the
    # average cost of one scored step so far. Step 0 always trains: one update at least.
    if cfg.max_train_seconds is not None and step > 0 and elapsed * (step + 2) / (step + 1) > cfg.max_train_seconds:
        return "time"
    return ""
