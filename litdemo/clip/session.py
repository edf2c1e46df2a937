"""A LIT session on CLIP: show an image, get a prediction; correct it, and the model learns.

    session = ClipLitSession.create(["sparrow", "finch"], model="vit-b-32")
    pred = session.predict(image, "img-001")          # ClipPrediction: label + top-k
    if pred.predicted != truth:
        event = session.correct("img-001", truth)      # ClipCorrection: with its training curve
    session.history.save("history.json")

The session owns its state (classifier, adapter, replay memory, history); nothing is global,
so an app can hold one session per visitor. Images in: PIL or numpy; dataclasses out.
"""
from __future__ import annotations

import os
import random
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import torch

from . import adapter
from .classifier import ZeroShotClassifier
from .config import ClipLitConfig
from .errors import UnknownImageError
from .history import ClipCorrection, ClipHistory, ClipPrediction
from .images import ImageLike
from .models import build_classifier
from .training import Example, TrainingCurve, train_on_correction, trainable_parameters

MODE_LABELS = {
    "zero-shot": "zero-shot CLIP (baseline, never trains)",
    "lit-lora": "LIT-LoRA (LoRA on the image encoder's attention)",
    "lit-ft": "LIT full fine-tune of the image encoder (ablation, not the paper's method)",
}


@dataclass
class ClipPlotData:
    """Everything the app / notebook plots, as plain lists."""
    images_seen: list[int]               # 1..N
    cumulative_corrections: list[int]    # corrections up to each image
    corrections_per_image: list[float]   # rolling mean over the last `window` images
    last_losses: list[float]             # loss curve of the latest correction ([] if none trained)
    last_true_prob: list[float]          # P(true class) along that curve


class ClipLitSession:
    def __init__(self, classifier: ZeroShotClassifier, config: Optional[ClipLitConfig] = None):
        self.config = config or ClipLitConfig()
        self.classifier = classifier
        self.mode = self.config.mode
        if self.mode == "lit-lora":
            adapter.add_lora(classifier.model, self.config)  # a no-op when the model already has it
        self._params = trainable_parameters(classifier, self.mode)   # what a correction may change
        self.memory: list[Example] = []          # every correction so far, replayed in training
        self._pending: "OrderedDict[str, tuple[torch.Tensor, ClipPrediction]]" = OrderedDict()
        self._rng = random.Random(self.config.seed)   # replay sampling, repeatable
        self.history = ClipHistory(model=classifier.clip.label, mode=self.mode,
                                   class_names=list(classifier.class_names), config=self.config.to_dict())

    @classmethod
    def create(cls, class_names: Sequence[str], model: str = "tiny-untrained",
               config: Optional[ClipLitConfig] = None, *, weights_path: Optional[str] = None,
               cache_dir: Optional[str] = None, device: str = "cpu") -> "ClipLitSession":
        config = config or ClipLitConfig()
        classifier = build_classifier(class_names, model, templates=config.templates, top_k=config.top_k,
                                      weights_path=weights_path, cache_dir=cache_dir, device=device,
                                      seed=config.seed)
        return cls(classifier, config)

    # --- what a person sees --------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return self.classifier.class_names

    @property
    def description(self) -> str:
        return f"{MODE_LABELS[self.mode]} on {self.classifier.clip.label}"

    def predict(self, image: ImageLike, image_id: Optional[str] = None) -> ClipPrediction:
        start = time.perf_counter()
        image_id = image_id if image_id is not None else f"image-{len(self.history.predictions):05d}"
        pixels = self.classifier.to_pixels([image])                   # (1, 3, S, S)
        probs = self.classifier.probabilities(pixels)[0]              # (K,)
        top = self.classifier.top(probs)
        pred = ClipPrediction(image_id=str(image_id), predicted=top[0][0], top_k=top, mode=self.mode,
                              seconds=time.perf_counter() - start)
        self._remember(pred.image_id, pixels[0], pred)
        return self.history.add(pred)

    def correct(self, image_id: str, true_label: str) -> ClipCorrection:
        """The user says image `image_id` (shown by predict) is `true_label`; LIT learns from it."""
        start = time.perf_counter()
        label = self.classifier.label_index(true_label)
        if image_id not in self._pending:
            raise UnknownImageError(f"image_id {image_id!r} was not predicted in this session (or is older than the last "
                           f"{self.config.pending_images} images); call predict(image, {image_id!r}) first.")
        pixels, pred = self._pending[image_id]
        p_before = self._true_prob(pixels, label)
        example = Example(pixels=pixels, label=label, image_id=image_id)
        curve: Optional[TrainingCurve] = None
        if self._params:   # the zero-shot baseline records the correction and learns nothing
            curve = train_on_correction(self.classifier, self._params, example, self.memory, self.config, self._rng)
        self.memory.append(example)
        event = ClipCorrection(image_id=image_id, predicted=pred.predicted, true_label=true_label, mode=self.mode,
                               true_prob_before=p_before, true_prob_after=self._true_prob(pixels, label),
                               curve=curve, seconds=time.perf_counter() - start)
        return self.history.add(event)

    def plot_data(self, window: int = 10) -> ClipPlotData:
        counts = self.history.cumulative_corrections()
        per_image = []
        for i in range(len(counts)):
            lo = max(0, i - window + 1)
            before = counts[lo - 1] if lo > 0 else 0
            per_image.append((counts[i] - before) / (i - lo + 1))
        trained = [c.curve for c in self.history.corrections if c.curve is not None]
        return ClipPlotData(images_seen=list(range(1, len(counts) + 1)), cumulative_corrections=counts,
                            corrections_per_image=per_image,
                            last_losses=list(trained[-1].losses) if trained else [],
                            last_true_prob=list(trained[-1].true_prob) if trained else [])

    # --- adapters on disk (peft format) -------------------------------------------------
    def save_adapter(self, directory: Union[str, os.PathLike]) -> Path:
        if self.mode != "lit-lora":
            raise ValueError(f"mode {self.mode!r} has no LoRA adapter to save; use mode 'lit-lora'.")
        return adapter.save_adapter(self.classifier.model, directory)

    def load_adapter(self, directory: Union[str, os.PathLike]) -> None:
        if self.mode != "lit-lora":
            raise ValueError(f"mode {self.mode!r} cannot take a LoRA adapter; create the session with mode 'lit-lora'.")
        adapter.load_adapter(self.classifier.model, directory)

    # --- internals -----------------------------------------------------------------------
    def _remember(self, image_id: str, pixels: torch.Tensor, pred: ClipPrediction) -> None:
        self._pending[image_id] = (pixels, pred)
        self._pending.move_to_end(image_id)
        while len(self._pending) > self.config.pending_images:
            self._pending.popitem(last=False)

    def _true_prob(self, pixels: torch.Tensor, label: int) -> float:
        return float(self.classifier.probabilities(pixels[None])[0, label])
