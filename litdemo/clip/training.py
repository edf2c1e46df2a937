"""The LIT training loop for one correction: the whole learning side of LIT-for-CLIP.

A correction says "image x is class y". We take a few optimizer steps on
    cross-entropy( temperature * cos(image_encoder(x), text_embedding[c]) over classes c, y )
for x plus a replay of earlier corrections, so the model moves x toward its class text
embedding without forgetting what it learned before. The class text embeddings are the
classifier's own weights (they are fixed unless the text tower is adapted too). We stop early
once every image in the batch is confidently right, or when the loss stops falling.
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .adapter import any_merged, forget_merged, lora_parameters
from .classifier import ZeroShotClassifier
from .config import ClipLitConfig

STOP_REASONS = ("confident", "plateau", "max_steps")


@dataclass
class Example:
    pixels: torch.Tensor   # (3, S, S) preprocessed image
    label: int             # class index
    image_id: str = ""


@dataclass
class TrainingCurve:
    losses: list[float] = field(default_factory=list)     # batch loss before each step, then after the last
    true_prob: list[float] = field(default_factory=list)  # P(true class) of the corrected image, same points
    steps: int = 0                                        # optimizer steps taken
    batch_size: int = 1                                   # corrected image + replayed ones
    stopped: str = "max_steps"                            # one of STOP_REASONS
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainingCurve":
        return cls(**data)


def trainable_parameters(classifier: ZeroShotClassifier, mode: str) -> list[nn.Parameter]:
    """What a correction may change: the LoRA tensors ("lit-lora") or the whole image encoder
    ("lit-ft", the full fine-tune ablation). The zero-shot baseline changes nothing."""
    if mode == "lit-lora":
        params = lora_parameters(classifier.model)
        if not params:
            raise ValueError("mode 'lit-lora' needs LoRA in the model; call adapter.add_lora(model, cfg) first.")
        return params
    if mode == "lit-ft":
        params = list(classifier.model.visual.parameters())
        for p in params:
            p.requires_grad_(True)
        return params
    return []


def pick_replay(memory: list[Example], size: int, rng: random.Random) -> list[Example]:
    """A uniform sample of earlier corrections (all of them while there are few)."""
    return list(memory) if len(memory) <= size else rng.sample(memory, size)


def train_on_correction(classifier: ZeroShotClassifier, params: list[nn.Parameter], example: Example,
                        memory: list[Example], cfg: ClipLitConfig, rng: random.Random) -> TrainingCurve:
    """Update `params` in place from one correction (plus replay); returns the training curve."""
    start = time.perf_counter()
    if any_merged(classifier.model):   # a merged weight is a plain tensor: the LoRA would get no gradient
        raise RuntimeError("train_on_correction called inside adapter.merged_lora(...): LoRA is folded into the "
                           "weights there and cannot learn; train outside the prediction context.")
    forget_merged(classifier.model)    # the steps below change A and B: the cached W + BA goes stale
    batch = [example] + pick_replay(memory, cfg.replay_size, rng)
    pixels = torch.stack([e.pixels for e in batch]).to(classifier.device)           # (B, 3, S, S)
    labels = torch.tensor([e.label for e in batch], device=classifier.device)       # (B,)
    # With LoRA on the text tower the class embeddings move too and must be recomputed each step.
    train_text = cfg.mode == "lit-lora" and "text" in cfg.lora_encoders
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    curve = TrainingCurve(batch_size=len(batch))
    best, since_best = float("inf"), 0

    classifier.model.train()
    try:
        for step in range(cfg.max_steps + 1):   # the extra pass only measures the last update
            text = classifier.encode_text() if train_text else classifier.text_embeddings  # (K, D)
            logits = classifier.logits(pixels, text)                                      # (B, K)
            loss = F.cross_entropy(logits, labels)
            p_true = logits.detach().softmax(dim=-1).gather(1, labels[:, None])[:, 0]      # (B,)
            curve.losses.append(float(loss.detach()))
            curve.true_prob.append(float(p_true[0]))
            if float(p_true.min()) >= cfg.early_stop_prob:
                curve.stopped = "confident"
                break
            if curve.losses[-1] < best - 1e-4:
                best, since_best = curve.losses[-1], 0
            else:
                since_best += 1
                if since_best >= cfg.early_stop_patience:
                    curve.stopped = "plateau"
                    break
            if step == cfg.max_steps:
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            curve.steps += 1
    finally:
        classifier.model.eval()
        for p in params:   # leave nothing with a grad attached between corrections
            p.grad = None
    if train_text:
        classifier.refresh_text_embeddings()
    curve.seconds = time.perf_counter() - start
    return curve
