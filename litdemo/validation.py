"""Checks of values that come from outside (a browser, a file, an environment variable, a caller).

One place for the rules that several modules need, so every entry point refuses the same bad
values with the same kind of sentence: what was wrong, and what to give instead. Each check
raises ValueError (the app shows its text as is) and returns the value in the type it wants.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np


def is_whole(value: Any) -> bool:
    """True for Python/numpy integers, but not for bools (True is 1 to Python, never a frame or an id to us)."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def number(value: Any, what: str) -> float:
    """`value` as a finite float (a string such as "3.5" is read); ValueError naming `what` otherwise."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        raise ValueError(f"{what} must be a number (got {value!r}).")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number (got {value!r}).") from None
    if not math.isfinite(out):
        raise ValueError(f"{what} must be a finite number (got {value!r}).")
    return out


def whole_number(value: Any, what: str) -> int:
    """`value` as an int; floats are accepted only when whole (a slider sends 3.0 for frame 3)."""
    if is_whole(value):
        return int(value)
    out = number(value, what)
    if not out.is_integer():
        raise ValueError(f"{what} must be a whole number (got {value!r}).")
    return int(out)


def check_finite_fields(obj: Any, names: Iterable[str]) -> None:
    """Refuse NaN and infinities in numeric fields: comparisons with NaN are all False, so a NaN
    slips through every `x <= 0` style range check (and an infinite limit is no limit)."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, (bool, np.bool_)) or value is None:
            continue
        if isinstance(value, numbers.Real) and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number (got {value!r}).")


def bool_mask(mask: Any, shape: tuple[int, int], what: str = "mask") -> np.ndarray:
    """An (H, W) bool mask from a bool, 0/1 integer or float array.

    Floats are read as probabilities and thresholded at 0.5 (NaN is refused: it is no answer);
    integers must be 0/1, so a 0/255 image or a label map is refused rather than silently
    turned all-foreground by `astype(bool)`.
    """
    arr = np.asarray(mask)
    if arr.shape != tuple(shape):
        raise ValueError(f"{what} has shape {arr.shape}, but frames are {shape[0]}x{shape[1]} (height x width); "
                         f"resize it to {tuple(shape)}.")
    if arr.dtype == bool:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if np.isnan(arr).any():
            raise ValueError(f"{what} holds NaN values; give a bool mask, 0/1 integers, or probabilities in [0, 1].")
        return arr >= 0.5
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise ValueError(f"{what} holds values {int(arr.min())}..{int(arr.max())}; give a bool mask or 0/1 "
                             f"integers (e.g. `labels == object_index` for a label map, `image > 127` for 0/255).")
        return arr.astype(bool)
    raise ValueError(f"{what} has dtype {arr.dtype}; give a bool mask, 0/1 integers, or float probabilities.")
