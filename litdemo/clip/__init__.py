"""LIT for CLIP: a zero-shot classifier that learns from each label correction (LoRA via peft).

    from litdemo.clip import ClipLitSession, ClipLitConfig
    session = ClipLitSession.create(class_names, model="vit-b-32")   # or "micro" offline
    pred = session.predict(image, "img-1"); session.correct("img-1", "true class")

Files, one concept each: config (settings), models (registry + build), classifier (zero-shot),
micro (training the shipped micro CLIP), adapter (peft LoRA placement, save/load), training (the
per-correction loop), session (the public API), history (events, JSON), datasets + hub_datasets +
synthetic (image sources), bench (simulated user), plots (pictures), cli (`litdemo clip-bench`,
`litdemo clip-train-micro`). See docs/clip.md.
"""
from .bench import ClipBenchResult, run_clip_benchmark
from .classifier import ZeroShotClassifier
from .config import MODES, ClipLitConfig
from .datasets import ClipDataset, load_dataset, make_stream
from .errors import (ClassListError, DatasetColumnError, DatasetLayoutError, DatasetUnavailableError,
                     UnknownImageError, UnknownLabelError, UnreadableImageError, WeightsHashError,
                     WeightsUnavailableError)
from .hub_datasets import (HuggingFaceClipDataset, TorchvisionClipDataset, hf_dataset, torchvision_cars,
                           torchvision_sun397)
from .history import ClipCorrection, ClipHistory, ClipPrediction
from .models import MODELS, build_classifier, build_clip, list_models
from .session import ClipLitSession, ClipPlotData
from .synthetic import SyntheticFineGrained, near_duplicate
from .training import TrainingCurve

__all__ = [
    "ClipBenchResult", "run_clip_benchmark", "ZeroShotClassifier", "MODES", "ClipLitConfig", "ClipDataset",
    "load_dataset", "make_stream", "HuggingFaceClipDataset", "TorchvisionClipDataset", "hf_dataset",
    "torchvision_cars", "torchvision_sun397", "ClassListError", "DatasetColumnError", "DatasetLayoutError",
    "DatasetUnavailableError", "UnknownImageError", "UnknownLabelError", "UnreadableImageError",
    "WeightsHashError", "WeightsUnavailableError", "ClipCorrection", "ClipHistory", "ClipPrediction", "MODELS", "build_classifier",
    "build_clip", "list_models", "ClipLitSession", "ClipPlotData", "SyntheticFineGrained", "near_duplicate",
    "TrainingCurve",
]
