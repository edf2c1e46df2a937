"""The notebooks' shared start: one switch between the offline micro model and the paper's setting.

    tour = setup(PRETRAINED, num_frames=32)
    predictor, sample, MODE, OBJ = tour.predictor, tour.sample, tour.mode, tour.obj_id
    print(tour.summary())

Offline (the default) nothing is downloaded: litdemo's own **micro** model, SAM2.1's architecture
shrunk to 1.8 M parameters and trained by litdemo on its synthetic videos (docs/micro.md), shipped
inside the package, at its own 128 px. It is not SAM2.1 and knows synthetic shapes only, and
`Tour.label` says so. LIT runs as LIT-LoRA, the paper's method, on a procedural video of the
`tour` split (an appearance change). With the switch on: SAM2.1 tiny weights at SAM2's own 1024 px, LIT-LoRA,
and the DAVIS video bmx-trees when $LITDEMO_DAVIS_ROOT names a DAVIS folder.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

PRETRAINED_ENV = "LITDEMO_PRETRAINED"
DAVIS_ENV = "LITDEMO_DAVIS_ROOT"
DAVIS_SEQUENCE = "bmx-trees"      # thin occluders: plain SAM2 needs help there
PRETRAINED_NUM_FRAMES = 30        # enough of bmx-trees to see LIT take over, short enough for a laptop
OFFLINE_MODEL = "micro"           # shipped inside litdemo: the only trained model with no download
# The offline video comes from the procedural `tour` split (never training or evaluation data): an
# appearance change (TOUR_EVENTS[i % 3] == "appearance", i = 2, 5, 8, ...): the object's colours and
# pattern switch mid-video while SAM2's memory still holds the old look, a repeated error that
# corrections on this one video can teach. It is the app's first tour sample (app/samples.py): of the
# 148 appearance videos scored on the shipped micro, the one where LIT-LoRA with the paper's defaults
# saves the most corrections: tour-263, a plum ring that drifts half out of the frame over a background
# of similar colours and turns to green checks on frame 14 (SAM2 alone 21, LIT-LoRA 17 with 4 suggestions
# accepted, on all 32 frames; on the micro shipped before, the pick was tour-35, 15 and 11). The app's
# look-alike sample saves one more (6 -> 1), but the notebooks are written around an appearance change.
# A video where LIT saves nothing would show no LIT at all.
OFFLINE_SPLIT, OFFLINE_INDEX = "tour", 263
OBJECT_FOLLOWED = 1


def _micro(what: str) -> str:
    from . import models  # imported late: it pulls in torch and sam2

    return {"label": models.MICRO_LABEL, "tag": models.MICRO_TAG}[what]


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
        """What the numbers are worth: empty with SAM2.1's weights, the micro model's label offline."""
        return "" if self.pretrained else _micro("label")

    @property
    def tag(self) -> str:
        """For figure titles (litdemo.plots.tagged): "[micro: synthetic-trained, not SAM2.1]" offline."""
        return "" if self.pretrained else _micro("tag")

    def summary(self) -> str:
        p, s = self.predictor, self.sample
        model = "SAM2.1 tiny, pretrained" if self.pretrained else p.model_label
        return (f"{model}, {p.image_size} px on {self.device}; LIT mode {self.mode!r}; "
                f"video {s.name}: {s.num_frames} frames of {s.height}x{s.width}")


def pretrained_from_env() -> bool:
    return os.environ.get(PRETRAINED_ENV, "0") == "1"


def setup(pretrained: Optional[bool] = None, num_frames: int = 32, device=None) -> Tour:
    """Model, video and LIT mode for a notebook; `pretrained=None` reads $LITDEMO_PRETRAINED.

    `num_frames` is the length of the offline procedural video; with weights the tour uses 30 frames.
    """
    if pretrained is None:
        pretrained = pretrained_from_env()
    if not pretrained:
        # Belt and braces: offline, nothing may reach the hub. huggingface_hub reads this once, when it is
        # first imported, so it is set before the imports below pull it in.
        os.environ["HF_HUB_OFFLINE"] = "1"
    import torch

    from .models import pick_device

    torch.manual_seed(0)  # every run of a notebook draws the same random numbers
    device = pick_device(device)
    return Tour(predictor=tour_model(pretrained, device), sample=tour_video(pretrained, num_frames),
                mode="lit-lora", obj_id=OBJECT_FOLLOWED, pretrained=pretrained, device=device)


def tour_model(pretrained: bool, device=None):
    """SAM2.1 tiny's weights at 1024 px (WeightsUnavailableError says where to put them), else micro at 128."""
    from .models import load_sam2

    if pretrained:
        return load_sam2("tiny", device=device)
    return load_sam2(OFFLINE_MODEL, device=device)  # its own image size (128): the size it was trained at


def tour_video(pretrained: bool, num_frames: int = 32):
    """DAVIS bmx-trees with weights and $LITDEMO_DAVIS_ROOT, else a synthetic video; offline a held-out
    procedural video (see OFFLINE_INDEX), never one the micro model was trained on."""
    from .datasets import load_davis, make_procedural_video, make_synthetic_video

    if not pretrained:
        return make_procedural_video(OFFLINE_SPLIT, OFFLINE_INDEX, num_frames=num_frames)
    davis_root = os.environ.get(DAVIS_ENV)
    if davis_root:
        return load_davis(davis_root, DAVIS_SEQUENCE, max_frames=PRETRAINED_NUM_FRAMES)
    return make_synthetic_video(num_frames=PRETRAINED_NUM_FRAMES, height=240, width=320, seed=0)
