"""One object's learner: its adapters, its corrections, its suggestions.

With `max_adapters=1` (the paper's LIT-LoRA) every correction trains the same adapter. With
more (the paper's multi-LoRA variant uses 3) a correction that no existing adapter already
predicts well (IoU < `new_adapter_below_iou`) starts a new adapter, so a new appearance of the
object gets its own expert; a suggestion then comes from the adapter whose decoder is most
confident (highest predicted IoU) on that frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from .adapters import make_expert_decoder
from .config import LitConfig
from .decoder import DecoderInputs, DecoderOutput, EmptyPrompt, most_confident, run_decoder
from .training import TrainingCurve, TrainingSample, batch_iou, train_on_correction


@dataclass
class Adapter:
    decoder: torch.nn.Module
    samples: list[TrainingSample] = field(default_factory=list)  # the corrections it was trained on


class ObjectLearner:
    def __init__(self, base_decoder: torch.nn.Module, prompt: EmptyPrompt, cfg: LitConfig):
        if not cfg.learns:
            raise ValueError("mode 'sam2' does not learn; use 'lit-lora' or 'lit-ft'.")
        self.base_decoder = base_decoder
        self.prompt = prompt
        self.cfg = cfg
        self.adapters: list[Adapter] = []

    @property
    def trained(self) -> bool:
        return any(a.samples for a in self.adapters)

    @torch.no_grad()
    def predict(self, inputs: DecoderInputs) -> Optional[tuple[DecoderOutput, int]]:
        """The most confident adapter's output on one frame, and that adapter's index."""
        return most_confident(self.predict_each(inputs))

    @torch.no_grad()
    def predict_each(self, inputs: DecoderInputs) -> list[tuple[DecoderOutput, int]]:
        """Every trained adapter's output on one frame, with its index (the multi-LoRA picker's thumbnails)."""
        x = inputs.to(self.prompt.image_pe.device)
        return [(run_decoder(a.decoder, self.prompt, x), i) for i, a in enumerate(self.adapters) if a.samples]

    def learn(self, sample: TrainingSample, on_step=None) -> tuple[TrainingCurve, int]:
        """Train on one correction; returns the curve and the index of the adapter trained."""
        adapter_idx = self._choose_adapter(sample)
        adapter = self.adapters[adapter_idx]
        first = not adapter.samples
        curve = train_on_correction(adapter.decoder, self.prompt, sample, adapter.samples, self.cfg, first=first,
                                    on_step=on_step)
        adapter.samples.append(sample)
        return curve, adapter_idx

    def tracking_decoder(self) -> Optional[torch.nn.Module]:
        """The decoder SAM2 may track with (option `use_adapter_in_propagation`)."""
        trained = [a for a in self.adapters if a.samples]
        # With several adapters, the newest one has seen the most recent appearance.
        return trained[-1].decoder if trained else None

    def _choose_adapter(self, sample: TrainingSample) -> int:
        if not self.adapters:
            return self._new_adapter()
        scores = [self._iou_on(a, sample) for a in self.adapters]
        best = max(range(len(scores)), key=scores.__getitem__)
        if len(self.adapters) >= self.cfg.max_adapters or scores[best] >= self.cfg.new_adapter_below_iou:
            return best
        return self._new_adapter()

    def _new_adapter(self) -> int:
        decoder = make_expert_decoder(self.base_decoder, self.cfg, len(self.adapters), self.prompt.image_pe.device)
        self.adapters.append(Adapter(decoder))
        return len(self.adapters) - 1

    @torch.no_grad()
    def _iou_on(self, adapter: Adapter, sample: TrainingSample) -> float:
        out = run_decoder(adapter.decoder, self.prompt, sample.inputs.to(self.prompt.image_pe.device))
        return batch_iou(out, sample.target.to(self.prompt.image_pe.device))
