"""The LIT-for-CLIP hyper-parameters in one place.

The adapter defaults are CLIP-LoRA's (Zanella & Ben Ayed, CVPR-W 2024,
https://github.com/MaxZanella/CLIP-LoRA: rank 2, alpha 1, dropout 0.25 on q/k/v). The LIT
paper's CLIP experiment does not publish its per-correction schedule, so the step count,
learning rate, replay and early-stopping values below are ours; each comment says why.
Change them here, never inside the training loop.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

MODES: tuple[str, ...] = ("zero-shot", "lit-lora", "lit-ft")
ENCODERS: tuple[str, ...] = ("vision", "text")
PROJECTIONS: tuple[str, ...] = ("in_proj",)


@dataclass
class ClipLitConfig:
    # --- what learns -----------------------------------------------------------------
    # "lit-lora": LoRA on the image encoder (the method); "zero-shot": plain CLIP through the
    # same code (the baseline, never trains); "lit-ft": full fine-tune of the image encoder, an
    # ablation that also learns on an untrained model (see docs/clip.md).
    mode: str = "lit-lora"
    # LoRA rank and alpha: CLIP-LoRA's r=2, alpha=1 (scale alpha/r = 0.5).
    lora_rank: int = 2
    lora_alpha: float = 1.0
    # CLIP-LoRA uses dropout 0.25 on the LoRA input. peft's parameter-LoRA (the one that reaches
    # nn.MultiheadAttention's packed q/k/v, see adapter.py) does not implement dropout, so 0.
    lora_dropout: float = 0.0
    # Which towers get LoRA. CLIP-LoRA adapts both; we adapt only the image encoder by default so
    # the class text embeddings are computed once and never go stale (see docs/clip.md).
    lora_encoders: tuple[str, ...] = ("vision",)
    # Which attention projection: "in_proj", open_clip's packed q/k/v matrix (CLIP-LoRA's q, k, v).
    # The attention output (CLIP-LoRA's optional "o") cannot be adapted this way: nn.MultiheadAttention
    # reads `out_proj.weight` without calling `out_proj`, so a peft LoRA there would never apply.
    lora_projections: tuple[str, ...] = ("in_proj",)

    # --- the training loop, run once per correction ----------------------------------------
    # Upper bound of optimizer steps per correction: LIT must answer while the user waits.
    max_steps: int = 10
    # AdamW learning rate. CLIP-LoRA uses 2e-4 over ~500 x shots iterations; LIT gets at most
    # max_steps per correction, so it needs a larger step to change the answer at once.
    lr: float = 1e-3
    # The paper's LoRA recipe trains without weight decay on the adapter.
    weight_decay: float = 0.0
    # Earlier corrections replayed with each new one so the adapter does not forget them.
    replay_size: int = 8
    # Early stopping: stop once every image in the batch is classified right with at least this
    # probability on the true class ...
    early_stop_prob: float = 0.9
    # ... or when the loss has not improved for this many steps.
    early_stop_patience: int = 3

    # --- the classifier -------------------------------------------------------------------
    # Prompt templates, "{}" stands for the class name; embeddings are averaged over templates
    # (CLIP's prompt ensembling). CLIP-LoRA uses one template per dataset.
    templates: tuple[str, ...] = ("a photo of a {}.",)
    # How many ranked classes a prediction reports (the app shows them as alternatives).
    top_k: int = 5
    # How many recently predicted images a session keeps, so `correct(image_id, ...)` can find
    # the pixels of an image shown a while ago.
    pending_images: int = 64
    # Seed for replay sampling and the untrained model's random weights: runs repeat exactly.
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r} is not one of {MODES}; use 'lit-lora' for the method "
                             "or 'zero-shot' for the baseline.")
        for name in ("lora_rank", "max_steps", "top_k", "pending_images"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1.")
        if self.lora_alpha <= 0 or self.lr <= 0:
            raise ValueError(f"lora_alpha={self.lora_alpha} and lr={self.lr} must be > 0.")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout={self.lora_dropout} must be in [0, 1).")
        if self.lora_dropout != 0.0:
            raise ValueError("lora_dropout must be 0: peft's LoRA on nn.MultiheadAttention's packed q/k/v "
                             "parameter has no dropout. Leave it at 0.")
        if self.replay_size < 0 or self.weight_decay < 0 or self.early_stop_patience < 1:
            raise ValueError("replay_size and weight_decay must be >= 0 and early_stop_patience >= 1; got "
                             f"{self.replay_size}, {self.weight_decay}, {self.early_stop_patience}.")
        if not 0.0 < self.early_stop_prob <= 1.0:
            raise ValueError(f"early_stop_prob={self.early_stop_prob} must be in (0, 1]; 1.0 disables it.")
        self.lora_encoders = tuple(self.lora_encoders)
        self.lora_projections = tuple(self.lora_projections)
        self.templates = tuple(self.templates)
        if not self.lora_encoders or set(self.lora_encoders) - set(ENCODERS):
            raise ValueError(f"lora_encoders={self.lora_encoders} must be a non-empty subset of {ENCODERS}.")
        if self.lora_projections != PROJECTIONS:
            raise ValueError(f"lora_projections={self.lora_projections} must be ('in_proj',): open_clip's attention "
                             "(nn.MultiheadAttention) reads out_proj.weight without calling out_proj, so a LoRA "
                             "there would never change an output.")
        if not self.templates or any(t.count("{}") != 1 for t in self.templates):
            raise ValueError(f"templates={self.templates} must be non-empty and each hold exactly one '{{}}' "
                             "for the class name, e.g. 'a photo of a {}.'")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "ClipLitConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ClipLitConfig fields {sorted(unknown)}; valid ones: {sorted(known)}.")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
