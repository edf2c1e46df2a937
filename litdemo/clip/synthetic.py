"""A synthetic fine-grained image set, drawn procedurally from a seed: no download.

Every class is a "bird" with the same body plan: an ellipse body with a head, on a noisy
background. Classes differ only in details, as in CUB: body colour, the colour of a small
accent mark, and where the mark sits (crown, throat or tail). Pairs of classes share all but
one of these, so the set is fine-grained by construction. Pose, size, position, background
and noise vary per image. Same (seed, class, index) -> same pixels, on any machine.

The same attributes give captions ("a photo of an azure bird with a crimson crown.") for
training the micro CLIP (micro.py), and a fixed split of the 60 attribute combinations into
TRAIN_CLASSES (what the micro CLIP is trained on) and HELDOUT_CLASSES (combinations it never
saw: each differs from several trained ones in a single attribute, so they are near-twins of
trained classes). `SyntheticFineGrained(classes="heldout")` draws only held-out classes.
"""
from __future__ import annotations

import itertools
import re
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image

from .datasets import ClipDataset

BODY_COLORS = {"azure": (60, 110, 200), "ochre": (205, 150, 50), "olive": (110, 135, 45),
               "slate": (95, 95, 120), "rose": (210, 120, 150)}
ACCENT_COLORS = {"crimson": (215, 30, 40), "white": (245, 245, 245), "black": (15, 15, 15),
                 "yellow": (250, 220, 30)}
ACCENT_PLACES = {"crowned": (-0.55, -0.55), "throated": (-0.55, 0.15), "tailed": (0.85, 0.0)}  # body coords


ALL_CLASSES: list[tuple[str, str, str]] = list(itertools.product(BODY_COLORS, ACCENT_COLORS, ACCENT_PLACES))
# The held-out split, fixed before any model was trained or benchmarked: 12 of the 60 combinations,
# from a permutation with a seed of its own (never a training or stream seed), kept in ALL_CLASSES order.
HELDOUT_SPLIT_SEED = 15
_HELDOUT = set(np.random.default_rng(HELDOUT_SPLIT_SEED).permutation(len(ALL_CLASSES))[:12].tolist())
HELDOUT_CLASSES: list[tuple[str, str, str]] = [c for i, c in enumerate(ALL_CLASSES) if i in _HELDOUT]
TRAIN_CLASSES: list[tuple[str, str, str]] = [c for i, c in enumerate(ALL_CLASSES) if i not in _HELDOUT]
CLASS_SETS = ("random", "heldout", "train")

# Captions for contrastive training: three ways to say the same bird, in four sentence frames.
# The first phrase is the class name the datasets use, so "a photo of a {}." prompts match training.
_PLACE_NOUNS = {"crowned": "crown", "throated": "throat", "tailed": "tail"}
PHRASES = ("{accent}-{place} {body} bird", "{body} bird with a {accent} {noun}",
           "{body} bird with a {accent} mark on its {noun}")
FRAMES = ("a photo of a {}.", "a picture of a {}.", "a close-up photo of a {}.", "a {}.")


def class_name(attributes: tuple[str, str, str]) -> str:
    """(body, accent colour, accent place) -> the class name, e.g. 'crimson-crowned azure bird'."""
    body, accent, place = attributes
    return PHRASES[0].format(body=body, accent=accent, place=place, noun=_PLACE_NOUNS[place])


def caption(attributes: tuple[str, str, str], rng: np.random.Generator) -> str:
    """A caption of a bird with these attributes in a random phrase and frame, e.g.
    'a picture of a slate bird with a yellow mark on its tail.'"""
    body, accent, place = attributes
    phrase = PHRASES[rng.integers(len(PHRASES))].format(body=body, accent=accent, place=place,
                                                        noun=_PLACE_NOUNS[place])
    text = FRAMES[rng.integers(len(FRAMES))].format(phrase)
    return re.sub(r"\ba (?=[aeiou])", "an ", text)          # "an azure bird", "an ochre bird"


def _pick_classes(classes: Union[str, Sequence[tuple[str, str, str]]], num_classes: Optional[int],
                  rng: np.random.Generator) -> list[tuple[str, str, str]]:
    if not isinstance(classes, str):
        picked = [tuple(c) for c in classes]
        unknown = [c for c in picked if c not in ALL_CLASSES]
        if unknown:
            raise ValueError(f"classes {unknown[:3]} are not (body, accent colour, accent place) triples from "
                             f"{list(BODY_COLORS)} x {list(ACCENT_COLORS)} x {list(ACCENT_PLACES)}.")
        return picked[:num_classes] if num_classes else picked
    if classes not in CLASS_SETS:
        raise ValueError(f"classes={classes!r} must be one of {CLASS_SETS} or a list of attribute triples.")
    pool = {"random": ALL_CLASSES, "heldout": HELDOUT_CLASSES, "train": TRAIN_CLASSES}[classes]
    num_classes = num_classes or len(pool)
    if not 2 <= num_classes <= len(pool):
        raise ValueError(f"num_classes={num_classes} must be in [2, {len(pool)}] for classes={classes!r} "
                         "(body x accent x place combinations in that set).")
    if classes != "random":
        return list(pool[:num_classes])      # the split's own order: the same classes for every seed
    # Sort a seeded shuffle by body colour so classes come in look-alike families.
    return sorted((pool[i] for i in rng.permutation(len(pool))[:num_classes]), key=lambda c: c[0])


class SyntheticFineGrained(ClipDataset):
    """`num_classes` classes drawn from `classes`: "random" (a seeded pick among all 60
    combinations, the default; 8 unless num_classes says otherwise), "heldout" / "train" (the micro
    CLIP's split, in a fixed order; all of it unless num_classes asks for fewer), or an explicit
    list of (body, accent colour, accent place)."""

    def __init__(self, num_classes: Optional[int] = None, images_per_class: int = 20, image_size: int = 64,
                 seed: int = 0, classes: Union[str, Sequence[tuple[str, str, str]]] = "random"):
        if images_per_class < 1 or image_size < 16:
            raise ValueError(f"images_per_class={images_per_class} must be >= 1 and image_size={image_size} >= 16.")
        if isinstance(classes, str) and classes == "random":
            num_classes = 8 if num_classes is None else num_classes
            if not 2 <= num_classes <= len(ALL_CLASSES):
                raise ValueError(f"num_classes={num_classes} must be in [2, {len(ALL_CLASSES)}] (body x accent x place).")
        rng = np.random.default_rng(seed)
        picked = _pick_classes(classes, num_classes, rng)
        self.attributes = picked                             # (body, accent colour, accent place)
        names = [class_name(c) for c in picked]
        labels = [c for c in range(len(picked)) for _ in range(images_per_class)]
        kind = "" if isinstance(classes, str) and classes == "random" else \
            (f"{classes}-" if isinstance(classes, str) else "custom-")
        super().__init__(name=f"synthetic-{kind}{len(picked)}c-seed{seed}", class_names=names, labels=labels,
                         templates=("a photo of a {}.",))
        self.images_per_class = images_per_class
        self.image_size = image_size
        self.seed = seed

    def image_id(self, index: int) -> str:
        return f"synthetic-{self.seed}-{index:05d}"

    def image(self, index: int) -> Image.Image:
        label = self.labels[index]
        rng = np.random.default_rng([self.seed, label, index])
        return Image.fromarray(draw_bird(self.attributes[label], self.image_size, rng))


def draw_bird(attributes: tuple[str, str, str], size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size, 3) uint8 picture of a bird with the given (body, accent, place)."""
    body, accent, place = attributes
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size            # (S, S) each, in [0, 1)
    background = rng.uniform(150, 235, size=3)
    tilt = rng.uniform(-40, 40, size=3)
    img = background + tilt * (yy[..., None] - 0.5)                        # (S, S, 3) soft gradient

    cx, cy = rng.uniform(0.38, 0.62, size=2)
    rx, ry = rng.uniform(0.22, 0.3), rng.uniform(0.13, 0.18)               # body half-axes
    angle = rng.uniform(-0.35, 0.35)
    cos, sin = np.cos(angle), np.sin(angle)
    u = ((xx - cx) * cos + (yy - cy) * sin) / rx                           # body coordinates:
    v = (-(xx - cx) * sin + (yy - cy) * cos) / ry                          # the body is u^2 + v^2 <= 1

    def disc(bu: float, bv: float, radius: float) -> np.ndarray:
        """(S, S) bool: a round spot centred at body coords (bu, bv), radius in image units."""
        return ((u - bu) * rx) ** 2 + ((v - bv) * ry) ** 2 <= radius ** 2

    color = np.clip(np.array(BODY_COLORS[body]) * rng.uniform(0.85, 1.15), 0, 255)
    img[(u ** 2 + v ** 2 <= 1) | disc(-0.95, -0.75, 0.6 * ry)] = color    # body and head
    au, av = ACCENT_PLACES[place]
    img[disc(au + rng.uniform(-0.08, 0.08), av + rng.uniform(-0.08, 0.08), rng.uniform(0.3, 0.4) * ry)] = \
        ACCENT_COLORS[accent]                                              # the one detail that matters
    img += rng.normal(0, 6, size=img.shape)                                # sensor noise
    return np.clip(img, 0, 255).astype(np.uint8)


def near_duplicate(image: Image.Image, rng: Optional[np.random.Generator] = None, shift: int = 1,
                   noise: float = 4.0) -> Image.Image:
    """The same picture shifted by `shift` pixels with fresh noise: what a burst of photos gives."""
    rng = rng or np.random.default_rng(0)
    arr = np.asarray(image, dtype=np.float32)
    arr = np.roll(arr, shift=(shift, shift), axis=(0, 1)) + rng.normal(0, noise, size=arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
