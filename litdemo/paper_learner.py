"""One object's adapters under the paper protocol: the LIT author's multi-LoRA, buffer and oracle choice.

As tools/online_eval.py (`vos_online_one_pass_lora_correction`) and `lora_predict` /
`train_lora` in YoungXinyu1802/sam2_demo run it (learned from, written anew):

- Suggestion: every adapter predicts the frame; the simulated user takes the one whose mask
  best matches the ground truth (IoU at the video's resolution, void left out); it is accepted
  when that IoU is above tau.
- Correction: the first one starts an adapter. Later, with the best adapter's IoU on the frame
  at most 0.4 and fewer than `max_adapters` adapters, a new adapter starts (100 epochs on this
  sample alone); otherwise the best adapter trains on this sample plus its buffer's best 5.
- Buffer: every trained sample joins the buffer of the adapter it trained, ranked by the best
  epoch IoU of that update; an accepted suggestion joins the buffer of the adapter that made
  it, with the ground truth as target and its own IoU as rank (it trains nothing by itself).

`max_adapters=1` is the single-adapter variant (method `lit-lora`); the author's default is 3
(method `lit-lora-3`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from .adapters import make_expert_decoder
from .config import LitConfig
from .decoder import DecoderInputs, DecoderOutput, most_confident, run_decoder, to_video_mask
from .metrics import iou
from .paper_training import PAPER_SCHEDULE, BufferedSample, PaperSchedule, replay_set, train_paper_update
from .protocols import first_token_only, single_mask_prompt
from .training import TrainingCurve, TrainingSample


@dataclass
class PaperAdapter:
    decoder: torch.nn.Module
    buffer: list[BufferedSample] = field(default_factory=list)


@dataclass
class Match:
    """The adapter whose suggestion best matches the ground truth on one frame."""
    adapter_idx: int
    iou: float
    output: DecoderOutput   # that adapter's decoder output (batch 1)
    mask: np.ndarray        # (H, W) bool, as shown


class PaperLearner:
    def __init__(self, base_decoder: torch.nn.Module, prompt, cfg: LitConfig,
                 schedule: PaperSchedule = PAPER_SCHEDULE):
        if not cfg.learns:
            raise ValueError("mode 'sam2' does not learn; use 'lit-lora' or 'lit-ft'.")
        self.base_decoder = base_decoder
        self.prompt = single_mask_prompt(prompt)
        self.cfg = cfg
        self.schedule = schedule
        self.adapters: list[PaperAdapter] = []

    @property
    def trained(self) -> bool:
        return bool(self.adapters)

    # ------------------------------------------------------------------ suggestions
    @torch.no_grad()
    def predict(self, inputs: DecoderInputs) -> Optional[tuple[DecoderOutput, int]]:
        """Without ground truth: the most confident adapter's output (as the interactive learner)."""
        return most_confident(self.predict_each(inputs))

    @torch.no_grad()
    def predict_each(self, inputs: DecoderInputs) -> list[tuple[DecoderOutput, int]]:
        """Every adapter's output on one frame, with its index (what the session's picker shows)."""
        x = inputs.to(self.prompt.image_pe.device)
        return [(run_decoder(a.decoder, self.prompt, x), i) for i, a in enumerate(self.adapters)]

    @torch.no_grad()
    def best_match(self, inputs: DecoderInputs, truth: np.ndarray, void: Optional[np.ndarray]) -> Optional[Match]:
        """The adapter whose mask best matches `truth` (the first one on ties), or None before any."""
        x = inputs.to(self.prompt.image_pe.device)
        best: Optional[Match] = None
        for i, adapter in enumerate(self.adapters):
            out = run_decoder(adapter.decoder, self.prompt, x)
            mask = to_video_mask(out, *truth.shape)[0].cpu().numpy()
            score = iou(mask, truth, void=void)
            if best is None or score > best.iou:
                best = Match(i, score, out, mask)
        return best

    def tracking_decoder(self) -> Optional[torch.nn.Module]:
        return self.adapters[-1].decoder if self.adapters else None

    # ------------------------------------------------------------------ learning
    def learn(self, sample: TrainingSample, truth: np.ndarray, void: Optional[np.ndarray],
              on_step=None) -> tuple[TrainingCurve, int]:
        """Train on one correction (target: `truth`); returns the curve and the adapter index."""
        match = self.best_match(sample.inputs, truth, void)
        item = BufferedSample(sample, truth, void, iou=0.0)
        if match is None or (match.iou <= self.schedule.new_adapter_at_or_below
                             and len(self.adapters) < self.cfg.max_adapters):
            idx, samples, first = self._new_adapter(), [item], True
        else:
            idx, first = match.adapter_idx, False
            samples = replay_set(self.adapters[idx].buffer, item, self.schedule)
        curve, best_iou = train_paper_update(self.adapters[idx].decoder, self.prompt, samples, first, self.cfg,
                                             self.schedule, on_step)
        item.iou = best_iou
        self.adapters[idx].buffer.append(item)
        return curve, idx

    def remember_accepted(self, sample: TrainingSample, truth: np.ndarray, void: Optional[np.ndarray],
                          match: Match) -> None:
        """An accepted suggestion joins the buffer of the adapter that made it (no training now)."""
        self.adapters[match.adapter_idx].buffer.append(BufferedSample(sample, truth, void, iou=match.iou))

    def _new_adapter(self) -> int:
        decoder = make_expert_decoder(self.base_decoder, self.cfg, len(self.adapters), self.prompt.image_pe.device)
        self.adapters.append(PaperAdapter(first_token_only(decoder)))
        return len(self.adapters) - 1
