"""Writing a session's results: per-frame PNG masks, an overlay video, the history, the adapters.

Everything is written into a temporary folder beside the destination and moved into place at
the end, so an interrupted export never leaves a half-written result behind.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
from PIL import Image

from .adapters import save_adapter
from .files import atomic_dir
from .plots import davis_palette, overlay_masks

if TYPE_CHECKING:
    from .session import LitSession


def label_map(masks: dict[int, np.ndarray], obj_ids: list[int], height: int, width: int) -> np.ndarray:
    """(H, W) uint8: 0 background, i+1 for obj_ids[i]; later objects win where masks overlap."""
    labels = np.zeros((height, width), np.uint8)
    for i, oid in enumerate(obj_ids):
        m = masks.get(oid)
        if m is not None:
            labels[m] = i + 1
    return labels


def save_mask_png(labels: np.ndarray, path: Union[str, Path]) -> None:
    """A palette PNG as in DAVIS: pixel value = object index, colours from the DAVIS palette."""
    img = Image.fromarray(labels, mode="P")
    img.putpalette(davis_palette().reshape(-1).tolist())
    img.save(path)


def write_overlay_video(frames: np.ndarray, masks_per_frame: list[dict[int, np.ndarray]], path: Union[str, Path],
                        fps: float) -> None:
    """An H.264 mp4 of the frames with masks blended in (ffmpeg from imageio-ffmpeg)."""
    import imageio.v2 as imageio

    h, w = frames.shape[1:3]
    # H.264 with yuv420p needs even sizes: pad by one pixel rather than rescale the picture.
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    with imageio.get_writer(str(path), format="ffmpeg", fps=max(fps, 1.0), codec="libx264",
                            macro_block_size=1, ffmpeg_log_level="error") as writer:
        for frame, masks in zip(frames, masks_per_frame):
            writer.append_data(np.pad(overlay_masks(frame, masks), pad, mode="edge"))


def save_session_adapters(session: "LitSession", folder: Union[str, Path]) -> list[Path]:
    """Each object's adapters as folder/obj_<id>/adapter_<k>/ (peft format for LIT-LoRA)."""
    folder = Path(folder)
    written = []
    for obj_id, learner in session.learners.items():
        for k, adapter in enumerate(learner.adapters):
            info = dict(obj_id=obj_id, adapter=k, mode=session.config.mode, frames=[s.frame_idx for s in adapter.samples],
                        model=session.history.model)
            written.append(save_adapter(adapter.decoder, folder / f"obj_{obj_id}" / f"adapter_{k}", extra=info))
    return written


def export_session(session: "LitSession", out_dir: Union[str, Path], overlay_video: bool = True,
                   overwrite: bool = False) -> dict[str, Path]:
    """Write masks/, overlay.mp4, history.json and adapters/ into out_dir; returns their paths."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty; choose another folder or pass overwrite=True.")
    with atomic_dir(out_dir, overwrite=True) as tmp:  # emptiness already checked above
        video, obj_ids = session.video, session.obj_ids
        (tmp / "masks").mkdir()
        per_frame = [session.masks.get(t, {}) for t in range(video.num_frames)]
        for t, masks in enumerate(per_frame):
            save_mask_png(label_map(masks, obj_ids, video.height, video.width), tmp / "masks" / f"{t:05d}.png")
        (tmp / "masks" / "objects.json").write_text(json.dumps({str(i + 1): oid for i, oid in enumerate(obj_ids)}))
        session.history.save(tmp / "history.json")
        if overlay_video:
            write_overlay_video(video.frames, per_frame, tmp / "overlay.mp4", video.fps)
        if session.learners:
            save_session_adapters(session, tmp / "adapters")
    paths = {"masks": out_dir / "masks", "history": out_dir / "history.json"}
    if overlay_video:
        paths["overlay"] = out_dir / "overlay.mp4"
    if session.learners:
        paths["adapters"] = out_dir / "adapters"
    return paths
