"""One registry of CLIP models: a short name -> open_clip architecture, pretrained tag, notes.

`build_clip` loads any entry through open_clip's own factory (`create_model_and_transforms`),
so pretrained weights come from open_clip's hub download / cache exactly as open_clip documents
(https://github.com/mlfoundations/open_clip/blob/main/src/open_clip/factory.py). Entries whose
tag is None are built with random weights; they are labelled "untrained" wherever shown.

"micro" is the one entry whose weights ship inside litdemo: an open_clip architecture of our
own (model_configs/litdemo-micro-clip.json, registered with open_clip.add_model_config) that
litdemo trained on synthetic birds (micro.py, `litdemo clip-train-micro`). Its file is checked
against the sha256 recorded below before open_clip loads it (with weights_only=True, like any
checkpoint file), so a corrupt or swapped file is refused instead of giving silent nonsense.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import open_clip
import torch
from torch import nn

from .errors import WeightsHashError, WeightsUnavailableError

_HERE = Path(__file__).resolve().parent
# Registering the folder lets open_clip build, tokenize and preprocess "litdemo-micro-clip" like its own models.
open_clip.add_model_config(_HERE / "model_configs")
MICRO_ARCH = "litdemo-micro-clip"
MICRO_LABEL = "micro CLIP, trained on synthetic images"
# The shipped file and its sha256 (docs/clip.md, "Model card: micro CLIP", says how it was made).
MICRO_WEIGHTS = "weights/micro_clip.pt"
MICRO_SHA256 = "e0d87f97c737c5c3321b547fd4d06150c84eaab98b448038fcb4430ae11ad71d"

# A deliberately tiny CLIP (~1.7M parameters, mostly the 49408-token embedding table): 32x32
# images in 4x4 patches of 8 px, two blocks per tower. For tests and offline tours only.
_TINY = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, layers=2, width=64, patch_size=8, head_width=16),
    text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=2),
)


@dataclass(frozen=True)
class ModelSpec:
    arch: str                      # open_clip architecture name (open_clip.list_models())
    pretrained: Optional[str]      # open_clip pretrained tag; None = random weights (untrained)
    note: str                      # one line for menus and reports
    overrides: dict = field(default_factory=dict)  # open_clip model kwargs (tiny configs)
    weights_file: Optional[str] = None   # weights shipped in the package (path under litdemo/clip/)
    sha256: Optional[str] = None         # ... and the hash that file must have

    @property
    def untrained(self) -> bool:
        return self.pretrained is None and self.weights_file is None


MODELS: dict[str, ModelSpec] = {
    # CLIP-LoRA's backbone (ViT-B/16, OpenAI weights): the default for reproducing the paper.
    "vit-b-16": ModelSpec("ViT-B-16", "openai", "ViT-B/16, OpenAI weights (CLIP-LoRA's backbone)"),
    # The CPU choice among pretrained CLIPs our LoRA placement fits: 32-px patches make it ~4x
    # cheaper than ViT-B/16 (49 vs 196 tokens). Smaller pretrained CLIPs in open_clip
    # (MobileCLIP, PE-Core-T) use timm image towers without nn.MultiheadAttention.
    "vit-b-32": ModelSpec("ViT-B-32", "openai", "ViT-B/32, OpenAI weights (fastest on CPU)"),
    "vit-b-32-laion": ModelSpec("ViT-B-32", "laion2b_s34b_b79k", "ViT-B/32, LAION-2B weights"),
    # Random-weight stand-ins: same code paths and sizes, no download.
    "vit-b-32-untrained": ModelSpec("ViT-B-32", None, "ViT-B/32 architecture, random weights (untrained)"),
    "vit-s-32-untrained": ModelSpec("ViT-S-32", None, "ViT-S/32 architecture, random weights (untrained)"),
    "tiny-untrained": ModelSpec("ViT-B-32", None, "tiny 32x32 CLIP, random weights (untrained)", _TINY),
    # Trained by litdemo on synthetic birds, shipped in the package: the offline CLIP that knows something.
    "micro": ModelSpec(MICRO_ARCH, None, MICRO_LABEL, weights_file=MICRO_WEIGHTS, sha256=MICRO_SHA256),
}


@dataclass
class LoadedClip:
    name: str                          # registry key
    spec: ModelSpec
    model: nn.Module                   # open_clip CLIP, in eval mode
    preprocess: Callable               # PIL image -> (3, S, S) float tensor, open_clip's eval transform
    tokenizer: Callable                # list[str] -> (N, context_length) int tensor
    weights: str                       # "untrained (random init, seed N)" | tag | file path

    @property
    def label(self) -> str:
        """What to show next to any number this model produced."""
        return f"{self.name} [{self.weights}]"


def list_models() -> list[str]:
    return list(MODELS)


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown CLIP model {name!r}; available models: {', '.join(MODELS)}.")
    return MODELS[name]


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shipped_weights(spec: ModelSpec) -> Path:
    """The path of a registry entry's packaged weights, after checking that its sha256 is the recorded one."""
    path = _HERE / spec.weights_file
    if not path.is_file():
        raise WeightsUnavailableError(
            f"the packaged weights {str(path)!r} of {spec.arch} are missing; reinstall litdemo, or retrain them "
            "with `litdemo clip-train-micro --out DIR` and pass --weights DIR/micro_clip.pt (Python: weights_path=).")
    found = sha256_of(path)
    if found != spec.sha256:
        raise WeightsHashError(
            f"refusing to load {str(path)!r}: its sha256 is {found}, but litdemo was released with {spec.sha256}. "
            "The file is corrupt or was replaced. Reinstall litdemo to restore it; to use weights you trained "
            "yourself, pass them explicitly with --weights PATH (Python: weights_path=PATH).")
    return path


def build_clip(name: str = "tiny-untrained", *, weights_path: Optional[str] = None,
               cache_dir: Optional[str] = None, device: str = "cpu", seed: int = 0) -> LoadedClip:
    """Build a registry model. Pretrained weights: the entry's tag through open_clip's download and
    cache (`cache_dir`), or a local checkpoint file (`weights_path`) which wins over the tag."""
    spec = get_spec(name)
    if weights_path is not None and not os.path.isfile(weights_path):
        raise FileNotFoundError(f"weights_path {weights_path!r} is not a file; give the path of an open_clip "
                                f"checkpoint for {spec.arch} (e.g. open_clip_pytorch_model.bin).")
    pretrained = weights_path or spec.pretrained
    if pretrained is None and spec.weights_file is not None:
        pretrained = str(shipped_weights(spec))   # checked before torch.load ever sees it
    torch.manual_seed(seed)  # random-init entries are then the same model on every run
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.arch, pretrained=pretrained, cache_dir=cache_dir, device=device, **spec.overrides)
    except RuntimeError as err:
        if pretrained is None:
            raise
        raise WeightsUnavailableError(
            f"could not load weights for model {name!r} ({spec.arch}, pretrained={pretrained!r}): {err}\n"
            f"No network? Download the checkpoint elsewhere (open_clip.create_model('{spec.arch}', "
            f"pretrained='{spec.pretrained}') fills the Hugging Face cache) and then either pass "
            "weights_path=<the .bin/.safetensors file> (CLI: --weights PATH), or cache_dir=<that cache> "
            "(CLI: --cache-dir DIR) with HF_HUB_OFFLINE=1. For offline tests use model 'tiny-untrained'."
        ) from err
    context = spec.overrides.get("text_cfg", {}).get("context_length")
    tokenizer = open_clip.get_tokenizer(spec.arch, context_length=context)
    model.eval()
    if pretrained is None:
        weights = f"untrained (random init, seed {seed})"
    elif weights_path is None and spec.weights_file is not None:
        weights = f"{spec.note}, sha256 {spec.sha256[:12]}"
    else:
        weights = str(pretrained)
    return LoadedClip(name, spec, model, preprocess, tokenizer, weights)


def build_classifier(class_names: Sequence[str], model: str = "tiny-untrained", *,
                     templates: Sequence[str] = ("a photo of a {}.",), top_k: int = 5,
                     weights_path: Optional[str] = None, cache_dir: Optional[str] = None,
                     device: str = "cpu", seed: int = 0):
    """A zero-shot classifier over `class_names` from a registry model (see classifier.py)."""
    from .classifier import ZeroShotClassifier  # classifier imports this module's types

    loaded = build_clip(model, weights_path=weights_path, cache_dir=cache_dir, device=device, seed=seed)
    return ZeroShotClassifier(loaded, class_names, templates=templates, top_k=top_k)
