"""The notebooks' shared start: one switch between an offline mechanics check and the paper's setting.

    tour = setup(PRETRAINED, num_frames=12)
    predictor, sample, MODE, OBJ = tour.predictor, tour.sample, tour.mode, tour.obj_id
    print(tour.summary())

Offline (the default) nothing is downloaded: SAM2.1 tiny keeps its random weights at 256 px, the video
is the built-in synthetic one and LIT runs as LIT-FT, the only mode that visibly learns on random
features. Everything it shows is therefore a check of the mechanics, and `Tour.label` says so.
With the switch on: SAM2.1 tiny weights at SAM2's own 1024 px, LIT-LoRA (the paper's method), and the
DAVIS video bmx-trees when $LITDEMO_DAVIS_ROOT names a DAVIS folder.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

PRETRAINED_ENV = "LITDEMO_PRETRAINED"
DAVIS_ENV = "LITDEMO_DAVIS_ROOT"
DAVIS_SEQUENCE = "bmx-trees"      # thin occluders: plain SAM2 needs help there
PRETRAINED_NUM_FRAMES = 30        # enough of bmx-trees to see LIT take over, short enough for a laptop
OFFLINE_IMAGE_SIZE = 256          # an untrained model gains nothing from SAM2's 1024 px, and 256 is fast
OBJECT_FOLLOWED = 1
UNTRAINED_LABEL = "untrained model: a mechanics check, not the paper's result"


@dataclass
class Tour:
    predictor: Any                # a LitVideoPredictor (typed loosely: importing it pulls in torch and sam2)
    sample: Any                   # a litdemo.datasets.VideoSample: frames and ground truth
    mode: str                     # the LitConfig mode the notebook uses
    obj_id: int                   # the object the notebook follows: sample.gt[obj_id][frame]
    pretrained: bool
    device: Any

    @property
    def label(self) -> str:
        """What the numbers are worth: empty with real weights, a warning on the untrained model."""
        return "" if self.pretrained else UNTRAINED_LABEL

    def summary(self) -> str:
        weights = "pretrained" if self.pretrained else "UNTRAINED (random weights)"
        s = self.sample
        return (f"SAM2.1 tiny, {weights}, {self.predictor.image_size} px on {self.device}; LIT mode {self.mode!r}; "
                f"video {s.name}: {s.num_frames} frames of {s.height}x{s.width}")


def pretrained_from_env() -> bool:
    return os.environ.get(PRETRAINED_ENV, "0") == "1"


def setup(pretrained: Optional[bool] = None, num_frames: int = 12, device=None) -> Tour:
    """Model, video and LIT mode for a notebook; `pretrained=None` reads $LITDEMO_PRETRAINED.

    `num_frames` is the length of the offline synthetic video; with weights the tour uses 30 frames.
    """
    if pretrained is None:
        pretrained = pretrained_from_env()
    if not pretrained:
        # Belt and braces: offline, nothing may reach the hub. huggingface_hub reads this once, when it is
        # first imported, so it is set before the imports below pull it in.
        os.environ["HF_HUB_OFFLINE"] = "1"
    import torch

    from .models import pick_device

    torch.manual_seed(0)  # the untrained model's random weights: the same on every run
    device = pick_device(device)
    return Tour(predictor=tour_model(pretrained, device), sample=tour_video(pretrained, num_frames),
                mode="lit-lora" if pretrained else "lit-ft", obj_id=OBJECT_FOLLOWED, pretrained=pretrained,
                device=device)


def tour_model(pretrained: bool, device=None):
    """SAM2.1 tiny: its weights at 1024 px (WeightsUnavailableError says where to put them), else random at 256."""
    from .models import load_sam2

    if pretrained:
        return load_sam2("tiny", device=device)
    return load_sam2("tiny", pretrained=False, image_size=OFFLINE_IMAGE_SIZE, device=device)


def tour_video(pretrained: bool, num_frames: int = 12):
    """DAVIS bmx-trees with weights and $LITDEMO_DAVIS_ROOT, else a synthetic video (larger with weights)."""
    from .datasets import load_davis, make_synthetic_video

    if not pretrained:
        return make_synthetic_video(num_frames=num_frames, height=128, width=160, seed=0)
    davis_root = os.environ.get(DAVIS_ENV)
    if davis_root:
        return load_davis(davis_root, DAVIS_SEQUENCE, max_frames=PRETRAINED_NUM_FRAMES)
    return make_synthetic_video(num_frames=PRETRAINED_NUM_FRAMES, height=240, width=320, seed=0)
