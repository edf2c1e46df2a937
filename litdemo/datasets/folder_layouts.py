"""MOSE v2, LVOS v2 and VOST: DAVIS-like folder layouts, read by the DAVIS folder reader.

All three ship `JPEGImages/<video>/<frame>.jpg` + `Annotations/<video>/<frame>.png` with
palette PNGs (pixel value = object id, 0 = background), like DAVIS 2017. Differences handled:

- No resolution level: frames sit directly in `JPEGImages/<video>/` (DAVIS has `480p/`).
- Split folders: MOSE and LVOS unpack to `<root>/train/`, `<root>/valid/`, ...; `root` may be
  either that parent (then pass `split`) or the split folder itself.
- Sparse / late annotations: frames and PNGs are matched by file name, so LVOS objects that
  appear mid-video, VOST's annotations on a subset of frames, and the validation splits of
  MOSE and LVOS (ground truth for the first frame of each object only) load as they are. The
  corrections benchmark needs GT on the frames it scores, so use the *train* splits (fully
  annotated) or your own annotations for it.
- Void: value 255 marks ignore regions in VOST and LVOS (and DAVIS); background in the GT masks,
  kept as `VideoSample.void` (left out of every IoU by the paper protocol).
- Frame names: MOSE/LVOS use numbers (00000.jpg / 00000001.jpg), VOST "frame00012.jpg"; the
  numeric tail orders them and a gap in it is reported as a missing frame.
- Sequence lists: VOST reads `ImageSets/<split>.txt`, LVOS `<split>_meta.json` ("videos" keys),
  MOSE has none (all folders).

fps is only used for playback and the annotation-time model; the defaults below are nominal,
pass `fps=` when your copy differs.
"""
from __future__ import annotations

import json
from pathlib import Path

from .base import DatasetError, VideoSample
from .davis import load_label_folder

# name -> nominal fps (playback only)
LAYOUTS: dict[str, float] = {
    "mose": 24.0,
    "lvos": 6.0,  # LVOS is released as 6 fps frame sequences
    "vost": 24.0,
}


def split_root(dataset: str, root: str | Path, split: str | None) -> Path:
    """The folder that directly holds JPEGImages/ and Annotations/."""
    root = Path(root)
    if (root / "JPEGImages").is_dir():
        return root
    if split and (root / split / "JPEGImages").is_dir():
        return root / split
    found = sorted(p.name for p in root.iterdir() if (p / "JPEGImages").is_dir()) if root.is_dir() else []
    hint = f"; pass split= one of {found}" if found else ""
    raise DatasetError(
        f"no {dataset} data at {root}: expected {root}/JPEGImages/ or {root}/<split>/JPEGImages/{hint}"
    )


def load_folder_dataset(dataset: str, root: str | Path, sequence: str, max_frames: int | None = None,
                        max_side: int | None = None, *, split: str | None = "train",
                        fps: float | None = None) -> VideoSample:
    """Load one video of MOSE ("mose"), LVOS ("lvos") or VOST ("vost")."""
    nominal_fps = _layout(dataset)
    base = split_root(dataset, root, split)
    return load_label_folder(base / "JPEGImages" / sequence, base / "Annotations" / sequence, sequence,
                             fps=fps or nominal_fps, max_frames=max_frames, max_side=max_side)


def list_folder_sequences(dataset: str, root: str | Path, split: str | None = "train") -> list[str]:
    """Video names of one split: from the dataset's own list file when present, else folders."""
    _layout(dataset)
    root = Path(root)
    base = split_root(dataset, root, split)
    if dataset == "vost" and split:
        listed = base / "ImageSets" / f"{split}.txt"
        if listed.is_file():
            return [ln.strip() for ln in listed.read_text().splitlines() if ln.strip()]
    if dataset == "lvos" and split:
        for meta in (base / f"{split}_meta.json", root / f"{split}_meta.json"):
            if meta.is_file():
                try:
                    return sorted(json.loads(meta.read_text())["videos"])
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise DatasetError(f"cannot read the video list in {meta}: {e}; re-download it") from e
    return sorted(p.name for p in (base / "JPEGImages").iterdir() if p.is_dir())


def load_mose(root: str | Path, sequence: str, max_frames: int | None = None,
              max_side: int | None = None, **kwargs) -> VideoSample:
    """One MOSE (v1 or v2) video; `split` defaults to "train", the fully annotated split."""
    return load_folder_dataset("mose", root, sequence, max_frames, max_side, **kwargs)


def load_lvos(root: str | Path, sequence: str, max_frames: int | None = None,
              max_side: int | None = None, **kwargs) -> VideoSample:
    """One LVOS v2 video; objects may first appear late, see `VideoSample.first_annotated_frame`."""
    return load_folder_dataset("lvos", root, sequence, max_frames, max_side, **kwargs)


def load_vost(root: str | Path, sequence: str, max_frames: int | None = None,
              max_side: int | None = None, **kwargs) -> VideoSample:
    """One VOST video (annotated on a subset of frames; void regions become background)."""
    kwargs.setdefault("split", None)  # VOST has no split folders
    return load_folder_dataset("vost", root, sequence, max_frames, max_side, **kwargs)


def _layout(dataset: str) -> float:
    if dataset not in LAYOUTS:
        raise DatasetError(f"unknown folder layout {dataset!r}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[dataset]
