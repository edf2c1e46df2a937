"""Errors of the CLIP variant: each one says what was wrong and what to do next.

They subclass the built-in error a caller would expect (ValueError, FileNotFoundError,
RuntimeError) so `except ValueError` keeps working for code that does not know them.
"""
from __future__ import annotations


class UnknownLabelError(ValueError):
    """A label that is not one of the classifier's class names."""


class UnreadableImageError(ValueError):
    """An image file or array that cannot be turned into an RGB picture."""


class ClassListError(ValueError):
    """An empty class list, or one that names a class twice."""


class DatasetLayoutError(FileNotFoundError):
    """A dataset folder that lacks a file its layout needs."""


class DatasetColumnError(ValueError):
    """A Hugging Face dataset whose image or label column cannot be found or used."""


class DatasetUnavailableError(RuntimeError):
    """A Hugging Face Hub dataset that could not be fetched (no network, wrong name, no access)."""


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights that could not be fetched or read (no network, wrong path)."""


class UnknownImageError(LookupError):
    """A correction for an image id the session has not shown (recently)."""


class WeightsHashError(WeightsUnavailableError):
    """A shipped weights file whose sha256 is not the one recorded for it (corrupt or replaced)."""
