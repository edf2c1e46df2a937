"""Dataset loaders over one registry: a short name -> how to list and load its videos.

    load_dataset("davis", root, "blackswan", max_side=512)   -> VideoSample
    list_sequences("sav", root)                              -> ["sav_000001", ...]
    for video in iter_videos("synthetic", None, num_frames=20): ...

Every loader returns a `VideoSample` (frames + per-object GT on annotated frames) and raises
`DatasetError` with the offending file on bad data.
"""
from __future__ import annotations

import inspect

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .base import DatasetError, VideoSample, davis_palette
from .davis import list_davis_sequences, load_davis, save_davis_layout
from .folder_layouts import list_folder_sequences, load_lvos, load_mose, load_vost
from .sav import decode_rle, encode_rle, list_sav_videos, load_sav, save_sav_layout
from .procedural import HARD_EVENTS, SPLIT_CODE, make_procedural_video
from .synthetic import make_synthetic_video

__all__ = [
    "DATASETS", "DatasetError", "VideoSample", "davis_palette", "decode_rle", "encode_rle",
    "iter_videos", "list_davis_sequences", "list_sav_videos", "list_sequences", "load_dataset",
    "load_davis", "load_lvos", "load_mose", "load_sav", "load_vost", "make_procedural_video", "make_synthetic_video",
    "save_davis_layout", "save_sav_layout",
]

SYNTHETIC_VIDEOS = 5  # default number of synthetic videos listed (seeds 0..4)


@dataclass(frozen=True)
class DatasetSpec:
    load: Callable[..., VideoSample]  # (root, sequence, **kwargs) -> VideoSample
    list: Callable[..., list[str]]  # (root, **kwargs) -> sequence names
    description: str  # one line for error messages and the CLI help


def _load_synthetic(root: object, sequence: str, max_frames: int | None = None,
                    max_side: int | None = None, **kwargs) -> VideoSample:
    """Synthetic "sequences" are named synthetic-<seed>; root is ignored (nothing to read)."""
    prefix = "synthetic-"
    if not (sequence.startswith(prefix) and sequence[len(prefix):].isdigit()):
        raise DatasetError(f"synthetic sequences are named 'synthetic-<seed>', e.g. 'synthetic-0'; got {sequence!r}")
    if max_frames is not None:
        kwargs["num_frames"] = min(kwargs.get("num_frames", 30), max_frames)
    if max_side is not None:
        raise DatasetError("max_side does not apply to synthetic videos; pass height= and width= instead")
    return make_synthetic_video(seed=int(sequence[len(prefix):]), **kwargs)


def _list_synthetic(root: object = None, num_videos: int = SYNTHETIC_VIDEOS, **_) -> list[str]:
    return [f"synthetic-{seed}" for seed in range(num_videos)]


def _list_davis(root, resolution="480p", split="val", **_):
    return list_davis_sequences(root, resolution, split)

PROCEDURAL_VIDEOS = 20  # default number of videos listed per held-out procedural split


def _load_procedural(root: object, sequence: str, max_frames: int | None = None,
                     max_side: int | None = None, num_frames: int = 32, **_) -> VideoSample:
    """Procedural "sequences" are named <split>-<index>, e.g. hard-3; root is ignored."""
    split, _, index = sequence.partition("-")
    if split not in SPLIT_CODE or not index.isdigit():
        raise DatasetError(f"procedural sequences are named '<split>-<index>' with split in {list(SPLIT_CODE)}, "
                           f"e.g. 'hard-3'; got {sequence!r}")
    if max_side is not None:
        raise DatasetError("max_side does not apply to procedural videos (they are 128x128)")
    return make_procedural_video(split, int(index), num_frames=min(num_frames, max_frames or num_frames))


def _list_procedural(root: object = None, split: str = "hard", num_videos: int = PROCEDURAL_VIDEOS, **_) -> list[str]:
    if split not in ("easy", "hard"):
        raise DatasetError(f"procedural evaluation splits are 'easy' and 'hard' (got {split!r}); "
                           f"'train' is the micro model's training data, never evaluated on.")
    return [f"{split}-{i}" for i in range(num_videos)]


DATASETS: dict[str, DatasetSpec] = {
    "davis": DatasetSpec(load_davis, _list_davis, "DAVIS 2016/2017 (binary or palette PNGs, auto-detected)"),
    "davis2017": DatasetSpec(load_davis, _list_davis, "DAVIS 2017, multi-object palette PNGs"),
    "sav": DatasetSpec(load_sav, lambda root, **_: list_sav_videos(root),
                       "SA-V val/test frames + per-object PNGs, or train mp4 + masklet JSON"),
    "mose": DatasetSpec(load_mose, lambda root, split="train", **_: list_folder_sequences("mose", root, split),
                        "MOSE v1/v2 (DAVIS-like, split folders)"),
    "lvos": DatasetSpec(load_lvos, lambda root, split="train", **_: list_folder_sequences("lvos", root, split),
                        "LVOS v2 (DAVIS-like, objects may appear late)"),
    "vost": DatasetSpec(load_vost, lambda root, split="val", **_: list_folder_sequences("vost", root, split),
                        "VOST (DAVIS-like, sparse annotations)"),
    "synthetic": DatasetSpec(_load_synthetic, _list_synthetic, "built-in generated videos, no download"),
    "procedural": DatasetSpec(_load_procedural, _list_procedural,
                              "held-out procedural videos of the micro model (split easy or hard), no download"),
}


GENERATED = ("synthetic", "procedural")  # rendered by litdemo: no root folder


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        valid = "; ".join(f"{k}: {v.description}" for k, v in DATASETS.items())
        raise DatasetError(f"unknown dataset {name!r}. Valid names - {valid}")
    return DATASETS[name]


def load_dataset(name: str, root: str | Path | None, sequence: str, **kwargs) -> VideoSample:
    """Load one video of dataset `name` (see DATASETS) from `root`."""
    spec = _spec(name)
    if root is None and name not in GENERATED:
        raise DatasetError(f"dataset {name!r} needs root= (the folder you downloaded it to)")
    return spec.load(root, sequence, **kwargs)


def list_sequences(name: str, root: str | Path | None = None, **kwargs) -> list[str]:
    """Sequence / video names of dataset `name` under `root` (split etc. as keyword arguments)."""
    spec = _spec(name)
    if root is None and name not in GENERATED:
        raise DatasetError(f"dataset {name!r} needs root= (the folder you downloaded it to)")
    return spec.list(root, **kwargs)


def _accepted_keywords(fn: Callable) -> set[str]:
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return {"split", "resolution", "fps", "masklets"}  # forwarded folder/SA-V options
    return {p.name for p in params}


_LIST_KEYS = {"split", "resolution", "num_videos"}  # listing options (also used for loading where they apply)


def iter_videos(name: str, root: str | Path | None = None, sequences: Sequence[str] | None = None,
                **kwargs) -> Iterator[VideoSample]:
    """Yield the videos of dataset `name` one at a time (all listed ones, or `sequences`).

    Lazy on purpose: a long benchmark holds one decoded video in memory at a time.
    """
    list_kwargs = {k: v for k, v in kwargs.items() if k in _LIST_KEYS}
    accepts = _accepted_keywords(_spec(name).load)
    # listing-only options (DAVIS's split) are not passed to loaders that have no such option
    load_kwargs = {k: v for k, v in kwargs.items() if k not in _LIST_KEYS or k in accepts}
    names = list(sequences) if sequences is not None else list_sequences(name, root, **list_kwargs)
    for sequence in names:
        yield load_dataset(name, root, sequence, **load_kwargs)
