"""CLIP benchmark datasets from torchvision dataset objects and Hugging Face `datasets`.

    load_dataset("torchvision-cars", root, split="test")   # torchvision.datasets.StanfordCars
    load_dataset("torchvision-sun397", root)               # torchvision.datasets.SUN397 (all images)
    load_dataset("hf", "org/name", split="test")           # Hub name, local data folder or save_to_disk folder
    TorchvisionClipDataset(any_torchvision_classification_dataset)
    HuggingFaceClipDataset(a_datasets_Dataset, image_column=None, label_column=None)

Like the folder loaders in datasets.py, only `image()` differs: labels and class names are read
up front (from the lists the source keeps, so no image is decoded for them), pixels on demand.
torchvision has no CUB-200-2011; use `cub` (the official archive) or a Hub copy through `hf`.
Hugging Face `datasets` is optional (`pip install 'litdemo[clip-data]'`) and imported only here,
only when needed.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from PIL import Image

from .datasets import ClipDataset, _check_split
from .errors import DatasetColumnError, DatasetLayoutError, DatasetUnavailableError
from .images import to_pil

PHOTO_TEMPLATES = ("a photo of a {}.",)
_NUMBER_PREFIX = re.compile(r"^\d+\.(?=\D)")   # CUB's "001.Black_footed_Albatross"
_LETTER_FOLDER = re.compile(r"^/[a-z]/")        # SUN397's "/a/abbey"


def clean_class_name(name: Any) -> str:
    """A class name fit for a prompt: no CUB number or SUN397 letter folder, '_' read as a space,
    and '/' too in a name without spaces, where it joins SUN397's sub-categories
    ('apartment_building/outdoor' -> 'apartment building outdoor', as the sun397 loader reads it),
    but not in Stanford Cars' 'Ram C/V Cargo Van Minivan 2012'."""
    text = _LETTER_FOLDER.sub("", _NUMBER_PREFIX.sub("", str(name).strip()))
    if " " not in text:
        text = text.replace("/", " ")
    return " ".join(text.replace("_", " ").split())


# --- torchvision ---------------------------------------------------------------------------
# Where torchvision's classification datasets keep what we need, so we never decode an image for it.
_LABEL_LISTS = ("targets", "_labels", "labels")          # ImageFolder/CIFAR/MNIST, SUN397/Flowers/DTD, SVHN
_SAMPLE_LISTS = ("_samples", "samples", "imgs")          # [(path, label), ...]: StanfordCars, ImageFolder
_PATH_LISTS = ("_image_files", "_images")                # SUN397/Food101/Flowers102, OxfordIIITPet


def _sized_list(source, attrs: Sequence[str]) -> Optional[list]:
    """The first attribute among `attrs` that is a sequence with one entry per item, or None."""
    for attr in attrs:
        values = getattr(source, attr, None)
        if values is not None and hasattr(values, "__len__") and not isinstance(values, str) \
                and len(values) == len(source):
            return list(values)
    return None


def _torchvision_labels(source) -> list[int]:
    labels = _sized_list(source, _LABEL_LISTS)
    if labels is None:
        samples = _sized_list(source, _SAMPLE_LISTS)
        labels = [s[1] for s in samples] if samples is not None else None
    if labels is None:   # nowhere stored: the slow way, decoding every image once
        return [int(source[i][1]) for i in range(len(source))]
    transform = getattr(source, "target_transform", None)   # __getitem__ would apply it, so we must too
    return [int(transform(y)) if transform is not None else int(y) for y in labels]


def _torchvision_paths(source) -> Optional[list[Path]]:
    samples = _sized_list(source, _SAMPLE_LISTS)
    paths = [s[0] for s in samples] if samples is not None else _sized_list(source, _PATH_LISTS)
    if paths is None or not all(isinstance(p, (str, os.PathLike)) for p in paths):
        return None
    return [Path(p) for p in paths]


def _picture_to_rgb(picture) -> Image.Image:
    """PIL image, numpy array, or a CHW tensor (a ToTensor transform) -> RGB PIL image."""
    if hasattr(picture, "permute") and getattr(picture, "ndim", 0) == 3 and picture.shape[0] in (1, 3, 4):
        picture = picture.permute(1, 2, 0).cpu().numpy()
    return to_pil(picture)


class TorchvisionClipDataset(ClipDataset):
    """Any torchvision classification dataset (items `(image, int label)`, names in `.classes`),
    or several with the same classes (e.g. its train and test splits) read as one. Items are
    ordered by file path when paths are known, so a seeded stream does not depend on the order
    the file system lists files in (torchvision's SUN397 globs them)."""

    def __init__(self, sources, name: Optional[str] = None, templates: Sequence[str] = PHOTO_TEMPLATES,
                 class_names: Optional[Sequence[str]] = None):
        sources = list(sources) if isinstance(sources, (list, tuple)) else [sources]
        # The caller's names are used as given; torchvision's are cleaned for prompts.
        if class_names is None:
            class_names = [clean_class_name(n) for n in _shared_classes(sources)]
        items, labels, paths = [], [], []
        for k, source in enumerate(sources):
            items += [(k, i) for i in range(len(source))]
            labels += _torchvision_labels(source)
            source_paths = _torchvision_paths(source)
            paths = paths + source_paths if paths is not None and source_paths is not None else None
        order = sorted(range(len(items)), key=lambda i: str(paths[i])) if paths else range(len(items))
        self._sources = sources
        self._items = [items[i] for i in order]
        super().__init__(name or type(sources[0]).__name__.lower(), class_names, [labels[i] for i in order],
                         [paths[i] for i in order] if paths else None, templates)

    def image(self, index: int) -> Image.Image:
        source, item = self._items[index]
        return _picture_to_rgb(self._sources[source][item][0])


def _shared_classes(sources) -> list[str]:
    classes = [getattr(s, "classes", None) for s in sources]
    if classes[0] is None:
        raise ValueError(f"{type(sources[0]).__name__} has no `.classes`; pass class_names=[...] in label order.")
    if any(list(c or []) != list(classes[0]) for c in classes):
        raise ValueError("the torchvision datasets given together have different `.classes`; wrap them one by one.")
    return list(classes[0])


def _open_torchvision(make, root: Path, what: str, layout: str):
    """torchvision says only 'Dataset not found': say which files it wanted."""
    try:
        return make()
    except (RuntimeError, FileNotFoundError) as err:
        raise DatasetLayoutError(f"torchvision's {what} could not read {str(root)!r} ({err}). It expects {layout} "
                                 "(see docs/clip.md, 'Datasets').") from err


def torchvision_cars(root: Union[str, os.PathLike], split: str = "test") -> TorchvisionClipDataset:
    """torchvision.datasets.StanfordCars (download=False: its source URL is gone). `root` holds
    stanford_cars/ (or is it): devkit/cars_meta.mat, devkit/cars_train_annos.mat + cars_train/,
    cars_test_annos_withlabels.mat + cars_test/. split 'all' joins train and test."""
    from torchvision.datasets import StanfordCars

    _check_split(split)
    root = Path(root)
    if root.name == "stanford_cars" and (root / "devkit").is_dir():
        root = root.parent   # torchvision appends stanford_cars/ itself
    layout = ("root/stanford_cars/ with devkit/cars_meta.mat, devkit/cars_train_annos.mat and cars_train/ "
              "(train), cars_test_annos_withlabels.mat and cars_test/ (test)")
    parts = ["train", "test"] if split == "all" else [split]
    sources = [_open_torchvision(lambda p=p: StanfordCars(root, split=p, download=False), root, "StanfordCars",
                                 layout) for p in parts]
    return TorchvisionClipDataset(sources, name=f"torchvision-cars-{split}")


def torchvision_sun397(root: Union[str, os.PathLike], split: str = "test") -> TorchvisionClipDataset:
    """torchvision.datasets.SUN397 (download=False): root/SUN397/ClassName.txt and
    root/SUN397/<letter>/<class>/sun_*.jpg. torchvision has no split, so every image is used
    (as the `sun397` loader does without CoOp's JSON); `split` is only checked."""
    from torchvision.datasets import SUN397

    _check_split(split)
    root = Path(root)
    if not (root / "SUN397").is_dir() and (root / "sun397" / "SUN397").is_dir():
        root = root / "sun397"   # CoOp's folder name, as the sun397 loader accepts
    elif root.name == "SUN397" and (root / "ClassName.txt").is_file():
        root = root.parent       # torchvision appends SUN397/ itself
    source = _open_torchvision(lambda: SUN397(root, download=False), root, "SUN397",
                               "root/SUN397/ClassName.txt and root/SUN397/<letter>/<class>/sun_*.jpg")
    return TorchvisionClipDataset(source, name="torchvision-sun397-all")


# --- Hugging Face datasets -----------------------------------------------------------------
def import_hf_datasets():
    """The Hugging Face `datasets` module, or an error that says how to get it. Checked by what
    it offers, because a `datasets` module or folder earlier on sys.path can shadow it (our own
    litdemo/clip/datasets.py does, for a script run from inside litdemo/clip/)."""
    try:
        module = importlib.import_module("datasets")
    except ImportError as err:
        if isinstance(err, ModuleNotFoundError) and err.name == "datasets":
            raise ImportError("reading Hugging Face datasets needs the `datasets` package: "
                              "pip install 'litdemo[clip-data]' (or pip install datasets).") from err
        raise ImportError(f"'import datasets' failed in {_module_origin('datasets')!r} ({err}). If that is not "
                          "Hugging Face datasets, run from another folder (or rename it); otherwise reinstall it: "
                          "pip install 'litdemo[clip-data]'.") from err
    if not all(hasattr(module, a) for a in ("load_dataset", "load_from_disk", "ClassLabel", "Image")):
        raise ImportError(f"'import datasets' found {getattr(module, '__file__', module)!r}, which is not Hugging "
                          "Face datasets; run from another folder (or rename that module) and "
                          "pip install 'litdemo[clip-data]'.")
    return module


def _module_origin(name: str) -> str:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    return str(spec.origin) if spec is not None else name


def _describe_columns(table) -> str:
    return ", ".join(f"{col} ({_feature_kind(feature)})" for col, feature in table.features.items())


def _feature_kind(feature) -> str:
    dtype = getattr(feature, "dtype", None)
    return f"{type(feature).__name__} {dtype}" if type(feature).__name__ == "Value" else type(feature).__name__


def _only_column(table, feature_type, what: str, option: str) -> str:
    found = [col for col, f in table.features.items() if isinstance(f, feature_type)]
    if len(found) == 1:
        return found[0]
    why = f"several {feature_type.__name__} columns ({', '.join(found)})" if found \
        else f"no {feature_type.__name__} column"
    raise DatasetColumnError(f"cannot tell which column holds the {what}: {why}. Columns: {_describe_columns(table)}. "
                             f"Pass {option}=<column> (CLI: --{option.replace('_', '-')}).")


def _check_column(table, column: str, option: str) -> None:
    if column not in table.column_names:
        raise DatasetColumnError(f"{option}={column!r} is not a column of this dataset; its columns: "
                                 f"{_describe_columns(table)}.")


def _label_column(hf, table, column: Optional[str]) -> str:
    column = column or _only_column(table, hf.ClassLabel, "labels", "label_column")
    _check_column(table, column, "label_column")
    return column


def _image_column(hf, table, column: Optional[str]) -> str:
    column = column or _only_column(table, hf.Image, "images", "image_column")
    _check_column(table, column, "image_column")
    if not isinstance(table.features[column], hf.Image):
        raise DatasetColumnError(f"column {column!r} is {_feature_kind(table.features[column])}, not an Image "
                                 f"feature; if it holds image paths or bytes, cast it first: "
                                 f"table.cast_column({column!r}, datasets.Image()).")
    return column


def _names_and_labels(hf, table, column: str) -> tuple[list[str], list[int]]:
    """Class names and integer labels from a ClassLabel column, or from a column of strings."""
    feature, values = table.features[column], list(table[column])   # one column: no image is decoded
    if isinstance(feature, hf.ClassLabel):
        unlabelled = sum(1 for v in values if v is None or v < 0)
        if unlabelled:
            raise DatasetColumnError(f"{unlabelled} of {len(values)} rows have no label (-1) in column {column!r}: "
                                     "this split is unlabelled; pick a labelled one (split=..., CLI --split).")
        return list(feature.names), [int(v) for v in values]
    if _feature_kind(feature) in ("Value string", "Value large_string"):
        names = sorted(set(values))
        index = {name: k for k, name in enumerate(names)}
        return names, [index[v] for v in values]
    raise DatasetColumnError(f"column {column!r} is {_feature_kind(feature)}: no class names to prompt with. "
                             f"Cast it to a ClassLabel first: table.cast_column({column!r}, "
                             "datasets.ClassLabel(names=[...])), or pick another label_column.")


class HuggingFaceClipDataset(ClipDataset):
    """A `datasets.Dataset` with an Image column and a ClassLabel column (the label's `names`
    become the class names). Both are found from the features unless named."""

    def __init__(self, table, *, image_column: Optional[str] = None, label_column: Optional[str] = None,
                 name: str = "hf", templates: Sequence[str] = PHOTO_TEMPLATES):
        hf = import_hf_datasets()
        image_column = _image_column(hf, table, image_column)
        label_column = _label_column(hf, table, label_column)
        names, labels = _names_and_labels(hf, table, label_column)
        images = table.select_columns([image_column])   # reading row i then decodes only its image
        if not getattr(images.features[image_column], "decode", True):
            images = images.cast_column(image_column, hf.Image())
        self._images, self.image_column, self.label_column = images, image_column, label_column
        super().__init__(name, [clean_class_name(n) for n in names], labels, templates=templates)

    def image(self, index: int) -> Image.Image:
        return to_pil(self._images[int(index)][self.image_column])


def hf_dataset(source, split: str = "test", *, image_column: Optional[str] = None,
               label_column: Optional[str] = None, cache_dir: Optional[str] = None,
               templates: Sequence[str] = PHOTO_TEMPLATES, name: Optional[str] = None) -> HuggingFaceClipDataset:
    """`source`: a Hub name ('org/name'), a local folder `datasets.load_dataset` reads (parquet,
    arrow, an image folder ...), a folder written by `save_to_disk`, or a loaded Dataset /
    DatasetDict. `split` picks from several ('all' joins them); a single Dataset is used whole."""
    hf = import_hf_datasets()
    table = _open_table(hf, source, split, cache_dir)
    return HuggingFaceClipDataset(table, image_column=image_column, label_column=label_column,
                                  name=name or f"hf-{_short_name(source, table)}-{split}", templates=templates)


def _short_name(source, table) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(str(source).rstrip("/\\")).name or "dataset"
    return getattr(table.info, "dataset_name", None) or "dataset"


def _open_table(hf, source, split: str, cache_dir: Optional[str]):
    if isinstance(source, hf.DatasetDict):
        return _pick_split(hf, source, split, "this DatasetDict")
    if isinstance(source, hf.Dataset):
        return source
    if isinstance(source, (hf.IterableDataset, hf.IterableDatasetDict)):
        raise ValueError("a streaming (Iterable) dataset cannot be read by index; load it without streaming=True.")
    path = Path(source)
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():   # save_to_disk output
        loaded = hf.load_from_disk(str(path))
        return _pick_split(hf, loaded, split, repr(str(path))) if isinstance(loaded, hf.DatasetDict) else loaded
    if path.exists():
        return _load_local(hf, str(path), split, cache_dir)
    return _load_from_hub(hf, str(source), split, cache_dir)


def _pick_split(hf, splits, split: str, what: str):
    if split == "all":
        return hf.concatenate_datasets(list(splits.values()))
    if split not in splits:
        raise ValueError(f"{what} has no split {split!r}; its splits: {', '.join(splits)} "
                         "(or 'all'). Pass split=... (CLI --split).")
    return splits[split]


def _load_local(hf, path: str, split: str, cache_dir: Optional[str]):
    try:
        return _load_split(hf, path, split, cache_dir)
    except FileNotFoundError as err:
        raise DatasetLayoutError(f"{path!r} holds no data files Hugging Face datasets can read ({err}); give a "
                                 "folder of parquet/arrow/csv/json files, an image folder (<split>/<class>/<image>) "
                                 "or a save_to_disk folder.") from err


def _load_from_hub(hf, name: str, split: str, cache_dir: Optional[str]):
    try:
        return _load_split(hf, name, split, cache_dir)
    except OSError as err:   # offline: ConnectionError; unknown or gated name: DatasetNotFoundError
        raise DatasetUnavailableError(
            f"could not fetch the Hugging Face dataset {name!r} ({err}). It is not a local folder, so it was "
            "looked up on the Hub. Without network: on a machine with internet run `hf download "
            f"{name} --repo-type dataset --local-dir DIR` (or load it and .save_to_disk(DIR)) and pass DIR as "
            "root (CLI --root); or copy a Hugging Face cache that holds it and set HF_HOME (or "
            "HF_DATASETS_CACHE) with HF_HUB_OFFLINE=1. Also check the name.") from err


def _load_split(hf, where: str, split: str, cache_dir: Optional[str]):
    """`datasets.load_dataset(where, split=...)`, with a clear error for a split it does not have."""
    try:
        return hf.load_dataset(where, split=split, cache_dir=cache_dir)
    except ValueError as err:
        if not _about_split(err):
            raise
        raise _split_error(where, split, err) from err


def _about_split(err: Exception) -> bool:
    return "split" in str(err).lower()   # datasets: 'Unknown split "test". Should be one of [...]'


def _split_error(where: str, split: str, err: Exception) -> Exception:
    return ValueError(f"{where!r}: no split {split!r} ({err}). Pass split=... (CLI --split); 'all' joins every split.")
