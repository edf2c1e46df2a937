"""Image classification datasets for the CLIP benchmark, by folder layout.

    load_dataset("synthetic")                       # made here, no download (synthetic.py)
    load_dataset("folder", root)                    # root/<class name>/<image>
    load_dataset("cub", root)                       # CUB-200-2011 as distributed (images.txt, ...)
    load_dataset("cars", root)                      # Stanford Cars: CoOp split JSON or devkit .mat
    load_dataset("sun397", root)                    # SUN397: CoOp split JSON or ClassName.txt
    load_dataset("torchvision-cars", root)          # through torchvision.datasets.StanfordCars
    load_dataset("torchvision-sun397", root)        # through torchvision.datasets.SUN397
    load_dataset("hf", "org/name" or folder)        # Hugging Face datasets: Hub, data or save_to_disk folder

The last three live in hub_datasets.py (torchvision has no CUB; Hub copies of all three go
through "hf"). CLIP-LoRA evaluates Cars and SUN397 on CoOp's splits (https://github.com/KaiyangZhou/CoOp,
DATASETS.md), so those JSON files are read first when present. A missing file gives an error
that names it. Images are read lazily, one at a time.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image

from .classifier import check_class_names
from .errors import DatasetLayoutError
from .images import read_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DATASETS = ("synthetic", "folder", "cub", "cars", "sun397", "torchvision-cars", "torchvision-sun397", "hf")


class ClipDataset:
    """Class names, one label per image, and a way to read image i. Subclasses only change where
    pixels come from (`image`)."""

    def __init__(self, name: str, class_names: Sequence[str], labels: Sequence[int],
                 paths: Optional[Sequence[Path]] = None, templates: Sequence[str] = ("a photo of a {}.",)):
        self.name = name
        self.class_names = check_class_names(class_names)
        self.labels = [int(x) for x in labels]
        self.paths = list(paths) if paths is not None else None
        self.templates = tuple(templates)   # the prompt wording this dataset is usually evaluated with
        if not self.labels:
            raise ValueError(f"dataset {name!r} has no images; check its root folder.")
        if min(self.labels) < 0 or max(self.labels) >= len(self.class_names):
            raise ValueError(f"dataset {name!r} has labels outside 0..{len(self.class_names) - 1}.")

    def __len__(self) -> int:
        return len(self.labels)

    def image_id(self, index: int) -> str:
        return str(self.paths[index]) if self.paths is not None else f"{self.name}-{index:06d}"

    def label_name(self, index: int) -> str:
        return self.class_names[self.labels[index]]

    def image(self, index: int) -> Image.Image:
        return read_image(self.paths[index])


def make_stream(dataset: ClipDataset, length: int, seed: int) -> list[int]:
    """A seeded order of `length` distinct images: the simulated user's stream."""
    if not 1 <= length <= len(dataset):
        raise ValueError(f"stream length {length} must be in [1, {len(dataset)}] for dataset {dataset.name!r}; "
                         "lower --stream-length or use a larger dataset.")
    return np.random.default_rng(seed).permutation(len(dataset))[:length].tolist()


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetLayoutError(f"{what}: {str(path)!r} is missing. Point root at the extracted dataset folder "
                                 "(see docs/clip.md, 'Reproducing the paper').")
    return path


def _first_existing(root: Path, candidates: Sequence[str]) -> Optional[Path]:
    for c in candidates:
        if (root / c).exists():
            return root / c
    return None


# --- any image folder ----------------------------------------------------------------------
def image_folder(root: Union[str, os.PathLike], name: str = "folder") -> ClipDataset:
    """root/<class>/<image>; folder names become class names ('_' read as a space)."""
    root = _need(Path(root), "image-folder root")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    names, labels, paths = [], [], []
    for d in class_dirs:
        files = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            continue   # an empty folder is not a class
        names.append(d.name.replace("_", " "))
        labels += [len(names) - 1] * len(files)
        paths += files
    if len(names) < 2:
        raise DatasetLayoutError(f"{str(root)!r} has {len(names)} class folder(s) with images; the layout is "
                                 f"root/<class>/<image>{IMAGE_EXTENSIONS[0]}, with at least two classes.")
    return ClipDataset(name, names, labels, paths)


# --- CUB-200-2011 --------------------------------------------------------------------------
def cub(root: Union[str, os.PathLike], split: str = "test") -> ClipDataset:
    """The official archive: classes.txt ('1 001.Black_footed_Albatross'), images.txt, image_class_labels.txt,
    train_test_split.txt, images/. `root` may be the folder holding CUB_200_2011/."""
    root = Path(root)
    root = _first_existing(root, ["CUB_200_2011"]) or root
    read = lambda f: [l.split() for l in _need(root / f, "CUB-200-2011 file").read_text().splitlines() if l.strip()]
    classes = {int(i): n.split(".", 1)[-1].replace("_", " ") for i, n in read("classes.txt")}
    images = {int(i): p for i, p in read("images.txt")}
    labels = {int(i): int(c) for i, c in read("image_class_labels.txt")}
    train = {int(i): f == "1" for i, f in read("train_test_split.txt")}
    keep = sorted(i for i in images if split == "all" or train[i] == (split == "train"))
    _check_split(split)
    order = sorted(classes)
    index = {c: k for k, c in enumerate(order)}
    return ClipDataset(f"cub-{split}", [classes[c] for c in order], [index[labels[i]] for i in keep],
                       [_need(root / "images", "CUB-200-2011 image folder") / images[i] for i in keep],
                       templates=("a photo of a {}, a type of bird.",))


def _check_split(split: str) -> None:
    if split not in ("train", "test", "all"):
        raise ValueError(f"split={split!r} must be 'train', 'test' or 'all'.")


def _coop_split(json_path: Path, image_dir: Path, split: str, name: str, templates) -> ClipDataset:
    """CoOp's split_zhou_*.json: {"train"|"val"|"test": [[relative path, label, class name], ...]}."""
    data = json.loads(json_path.read_text())
    parts = ["train", "val", "test"] if split == "all" else [split]
    rows = [r for p in parts for r in data.get(p, [])]
    if not rows:
        raise DatasetLayoutError(f"{str(json_path)!r} has no '{split}' entries.")
    names: dict[int, str] = {int(lbl): cname for _, lbl, cname in rows}
    for p in ("train", "val", "test"):   # class names from every split, so the list is complete
        names.update({int(lbl): cname for _, lbl, cname in data.get(p, [])})
    return ClipDataset(f"{name}-{split}", [names[i] for i in sorted(names)], [int(r[1]) for r in rows],
                       [image_dir / r[0] for r in rows], templates=templates)


# --- Stanford Cars -------------------------------------------------------------------------
def stanford_cars(root: Union[str, os.PathLike], split: str = "test") -> ClipDataset:
    """CoOp layout (stanford_cars/split_zhou_StanfordCars.json, paths relative to it), else the
    devkit layout torchvision uses (devkit/cars_meta.mat, cars_test_annos_withlabels.mat, cars_test/)."""
    _check_split(split)
    root = Path(root)
    root = _first_existing(root, ["stanford_cars"]) or root
    templates = ("a photo of a {}.",)
    if (root / "split_zhou_StanfordCars.json").is_file():
        return _coop_split(root / "split_zhou_StanfordCars.json", root, split, "cars", templates)
    from scipy.io import loadmat   # only the devkit layout needs it

    meta = loadmat(_need(root / "devkit" / "cars_meta.mat", "Stanford Cars devkit (or split_zhou_StanfordCars.json)"))
    names = [str(n[0]) for n in meta["class_names"][0]]
    labels, paths = [], []
    for part in (["train", "test"] if split == "all" else [split]):
        annos = root / ("cars_test_annos_withlabels.mat" if part == "test" else "devkit/cars_train_annos.mat")
        for a in loadmat(_need(annos, "Stanford Cars annotations"), squeeze_me=True)["annotations"]:
            labels.append(int(a["class"]) - 1)
            paths.append(_need(root / f"cars_{part}", "Stanford Cars image folder") / str(a["fname"]))
    return ClipDataset(f"cars-{split}", names, labels, paths, templates=templates)


# --- SUN397 --------------------------------------------------------------------------------
def sun397(root: Union[str, os.PathLike], split: str = "test") -> ClipDataset:
    """CoOp layout (sun397/split_zhou_SUN397.json, paths relative to sun397/SUN397/), else the
    official archive: SUN397/ClassName.txt ('/a/abbey') and SUN397/a/abbey/*.jpg (all images)."""
    _check_split(split)
    root = Path(root)
    root = _first_existing(root, ["sun397"]) or root
    templates = ("a photo of a {}.",)
    if (root / "split_zhou_SUN397.json").is_file():
        return _coop_split(root / "split_zhou_SUN397.json", root / "SUN397", split, "sun397", templates)
    image_dir = _first_existing(root, ["SUN397"]) or root
    class_paths = [l.strip() for l in _need(image_dir / "ClassName.txt", "SUN397 class list (or split_zhou_SUN397.json)")
                   .read_text().splitlines() if l.strip()]
    names, labels, paths = [], [], []
    for k, cp in enumerate(class_paths):   # '/a/abbey' -> 'abbey'; '/b/bakery/shop' -> 'bakery shop'
        names.append(" ".join(cp.strip("/").split("/")[1:]).replace("_", " "))
        files = sorted(_need(image_dir / cp.strip("/"), "SUN397 class folder").glob("*.jpg"))
        labels += [k] * len(files)
        paths += files
    return ClipDataset("sun397-all", names, labels, paths, templates=templates)


def load_dataset(name: str, root: Optional[Union[str, os.PathLike]] = None, *, split: str = "test",
                 **options) -> ClipDataset:
    """A dataset by short name (DATASETS). Real ones need `root` (for 'hf': a Hub name, a local
    folder or a loaded `datasets.Dataset`). Options: 'synthetic' takes num_classes /
    images_per_class / image_size / seed / classes
    ("random", "heldout", "train"); 'hf' takes image_column / label_column / cache_dir /
    templates; the others take none."""
    if name == "synthetic":
        from .synthetic import SyntheticFineGrained   # synthetic.py builds on ClipDataset

        return SyntheticFineGrained(**options)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}.")
    if root is None:
        what = "a Hugging Face Hub name or local folder" if name == "hf" else "<folder>"
        raise ValueError(f"dataset {name!r} needs root={what} (CLI: --root); only 'synthetic' needs no files.")
    from . import hub_datasets   # imports this module: load it late

    if name == "hf":
        return hub_datasets.hf_dataset(root, split=split, **options)
    if options:
        raise ValueError(f"dataset {name!r} takes no options (got {', '.join(options)}); "
                         "they are for 'synthetic' or 'hf'.")
    if name == "folder":
        return image_folder(root)
    loaders = {"cub": cub, "cars": stanford_cars, "sun397": sun397, "torchvision-cars": hub_datasets.torchvision_cars,
               "torchvision-sun397": hub_datasets.torchvision_sun397}
    return loaders[name](root, split=split)
