"""CLIP as a zero-shot classifier over a list of class names.

Each class is described by prompts ("a photo of a {}.") whose text embeddings are averaged and
normalized once, at construction (CLIP's prompt ensembling, Radford et al. 2021, sec. 3.1.4).
An image is classified by the cosine similarity of its embedding to every class embedding,
times CLIP's learned temperature. The same object serves the baseline and LIT: LIT only adds
LoRA to `model` (adapter.py); this file never trains anything.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from .adapter import merged_lora
from .errors import ClassListError, UnknownLabelError
from .images import ImageLike, to_pil
from .models import LoadedClip


def check_class_names(class_names: Sequence[str]) -> list[str]:
    names = list(class_names) if class_names is not None else []
    if not names:
        raise ClassListError("the class list is empty; give at least two class names, e.g. ['sparrow', 'finch'].")
    bad = [n for n in names if not isinstance(n, str) or not n.strip()]
    if bad:
        raise ClassListError(f"class names must be non-empty strings; got {bad[:5]}.")
    seen: dict[str, str] = {}
    for n in names:
        key = n.strip().casefold()  # "Sparrow" and "sparrow " would give the same prompt
        if key in seen:
            raise ClassListError(f"duplicate class name {n!r} (same as {seen[key]!r}); each class needs its own "
                                 "name, e.g. add the dataset's qualifier ('Cardinal (bird)').")
        seen[key] = n
    return [n.strip() for n in names]


class ZeroShotClassifier:
    def __init__(self, clip: LoadedClip, class_names: Sequence[str], *,
                 templates: Sequence[str] = ("a photo of a {}.",), top_k: int = 5):
        self.clip = clip
        self.model = clip.model                         # open_clip CLIP; LoRA is injected in place
        self.class_names = check_class_names(class_names)
        self.templates = tuple(templates)
        if not self.templates or any(t.count("{}") != 1 for t in self.templates):
            raise ValueError(f"templates={self.templates} must each hold one '{{}}' for the class name.")
        self.top_k = min(int(top_k), len(self.class_names))
        self._index = {n: i for i, n in enumerate(self.class_names)}
        self.text_embeddings = torch.empty(0)          # (K, D), unit norm; computed once, just below
        self.refresh_text_embeddings()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def label_index(self, label: str) -> int:
        if label not in self._index:
            shown = ", ".join(repr(n) for n in self.class_names[:8])
            more = f" (and {self.num_classes - 8} more)" if self.num_classes > 8 else ""
            raise UnknownLabelError(f"unknown label {label!r}; it must be one of the classifier's classes: "
                                    f"{shown}{more}.")
        return self._index[label]

    def to_pixels(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """Images -> (B, 3, S, S) normalized tensor through open_clip's eval preprocessing."""
        return torch.stack([self.clip.preprocess(to_pil(im)) for im in images]).to(self.device)

    def encode_text(self) -> torch.Tensor:
        """(K, D) class embeddings: mean over templates of unit prompt embeddings, renormalized.
        Differentiable: call it under torch.no_grad() unless the text tower is being trained."""
        prompts = [t.format(n) for n in self.class_names for t in self.templates]
        tokens = self.clip.tokenizer(prompts).to(self.device)          # (K*T, L)
        emb = F.normalize(self.model.encode_text(tokens), dim=-1)       # (K*T, D)
        emb = emb.view(self.num_classes, len(self.templates), -1).mean(dim=1)  # (K, D)
        return F.normalize(emb, dim=-1)

    def refresh_text_embeddings(self) -> None:
        """Recompute the cached class embeddings (needed only after the text tower changed)."""
        with torch.no_grad():
            self.text_embeddings = self.encode_text()

    def logits(self, pixels: torch.Tensor, text_embeddings: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, 3, S, S) pixels -> (B, K) logits = temperature * cosine(image, class)."""
        text = self.text_embeddings if text_embeddings is None else text_embeddings
        image = F.normalize(self.model.encode_image(pixels), dim=-1)    # (B, D)
        return self.model.logit_scale.exp() * image @ text.t()          # (B, K)

    @torch.no_grad()
    def probabilities(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, K) softmax over classes, model in eval mode. With LoRA, W + BA is
        folded into the image tower's weights for this call only (adapter.merged_lora: same
        numbers, no per-block parametrization; the base weights are put back bit for bit)."""
        self.model.eval()
        with merged_lora(getattr(self.model, "visual", self.model)):
            return self.logits(pixels).softmax(dim=-1)

    def top(self, probs: torch.Tensor) -> list[tuple[str, float]]:
        """(K,) probabilities -> the top_k (class name, probability) pairs, best first."""
        values, idx = probs.topk(self.top_k)
        return [(self.class_names[i], float(v)) for v, i in zip(values.tolist(), idx.tolist())]
