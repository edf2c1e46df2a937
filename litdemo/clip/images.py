"""Turning whatever the caller has (PIL image, numpy array, file path) into an RGB PIL image.

One place for it so the session, the datasets and the app agree on what an image is, and a
bad input fails here with an error that names it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import UnreadableImageError

ImageLike = Union[Image.Image, np.ndarray, str, os.PathLike]


def read_image(path: Union[str, os.PathLike]) -> Image.Image:
    """Open an image file as RGB, fully decoded (so a truncated file fails here, not later)."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableImageError(f"image file {str(path)!r} does not exist; check the dataset root and layout.")
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise UnreadableImageError(f"cannot decode image file {str(path)!r} ({err}); is it a JPEG/PNG? "
                                   "Re-download or remove it from the dataset.") from err


def to_pil(image: ImageLike) -> Image.Image:
    """PIL image, (H, W) / (H, W, 1|3|4) array (uint8 0..255 or float 0..1), or a file path -> RGB."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if not isinstance(image, np.ndarray):
        raise UnreadableImageError(f"expected a PIL image, numpy array or file path, got {type(image).__name__}.")
    arr = image
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)) or min(arr.shape[:2]) < 1:
        raise UnreadableImageError(f"image array of shape {arr.shape} is not (H, W) or (H, W, 3|4); "
                                   "pass an RGB array with channels last.")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
            raise UnreadableImageError(f"image array of dtype {arr.dtype} has non-finite or non-numeric values.")
        if arr.min() < 0 or arr.max() > 1:
            raise UnreadableImageError(f"float image array has values in [{arr.min():.3g}, {arr.max():.3g}]; "
                                       "scale it to [0, 1] or pass uint8 0..255.")
        arr = np.round(arr * 255).astype(np.uint8)
    img = Image.fromarray(arr)
    return img.convert("RGB")
