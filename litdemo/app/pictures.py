"""Pictures handed to Gradio as files already in its cache, each written whole, once.

Left to itself, Gradio saves a numpy or PIL picture by writing it *in place* to a file named after
its content. Two tabs showing the same picture at the same moment (a workshop: thirty students on
the same tour video, at the same step) then race: one tab's browser downloads the file while the
other tab's event is rewriting it, and the server fails that download ("Too little data for
declared Content-Length"; seen in the load test, benchmarks/bench_app_load.py). Here a picture is
encoded once, written beside its final name and renamed into place, so a reader sees the whole
file or none; a file already there is reused, not rewritten. Gradio serves a path that lies inside
its cache as it is.
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image

from ..files import atomic_file

Picture = Union[np.ndarray, Image.Image]


def encode(picture: Picture, fmt: str) -> bytes:
    """The picture as the bytes of an image file in `fmt` (Pillow's name: "jpeg", "png", "webp")."""
    if isinstance(picture, np.ndarray) and picture.dtype != np.uint8:
        # the app draws uint8 pictures; a cast here would silently turn floats in [0, 1] into black
        raise TypeError(f"a picture to send must be uint8, got {picture.dtype}")
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    if fmt.lower() in ("jpeg", "jpg") and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")  # JPEG has no alpha
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def cached_file(data: bytes, cache_dir: Union[str, Path], name: str) -> str:
    """`data` as the file `cache_dir/<sha256>/name`, written whole; an existing one is reused."""
    path = Path(cache_dir) / hashlib.sha256(data).hexdigest() / name
    try:
        os.utime(path)  # it exists: reuse it, and let Gradio's delete_cache age it from now
        return str(path)
    except FileNotFoundError:
        pass
    with atomic_file(path) as tmp:  # a concurrent writer of the same bytes replaces it with the same file
        tmp.write_bytes(data)
    return str(path)


def for_component(component: Any, picture: Picture) -> str:
    """`picture` as the path an Image component (its `format`, its cache) serves as it is."""
    fmt = component.format or "png"
    return cached_file(encode(picture, fmt), component.GRADIO_CACHE, f"image.{fmt}")


def for_gallery(gallery: Any, items: list) -> list:
    """A Gallery's (picture, caption) items with each picture replaced by its cached path."""
    return [(for_component(gallery, picture), caption) if _is_picture(picture) else (picture, caption)
            for picture, caption in items]


def as_served(component: Any, value: Any) -> Any:
    """A view's value for `component`, its pictures as cached paths (Image, Gallery); anything else as it is."""
    import gradio as gr

    if isinstance(component, gr.Image) and _is_picture(value):
        return for_component(component, value)
    if isinstance(component, gr.Gallery) and isinstance(value, list):
        return for_gallery(component, value)
    return value


def _is_picture(value: Any) -> bool:
    return isinstance(value, (np.ndarray, Image.Image))
