"""CLIP datasets through torchvision and Hugging Face `datasets`, on tiny fakes made here, offline.

The fakes are written in the exact layouts torchvision's StanfordCars and SUN397 read, and as
Hugging Face datasets (objects, save_to_disk folders, parquet and image folders).
"""
from __future__ import annotations

import csv
import sys
import types

import numpy as np
import pytest
import scipy.io
from PIL import Image

from litdemo.clip import (DatasetColumnError, DatasetLayoutError, DatasetUnavailableError, HuggingFaceClipDataset,
                          TorchvisionClipDataset, hf_dataset, load_dataset, torchvision_cars, torchvision_sun397)
from litdemo.clip.cli import main as clip_cli
from litdemo.clip.datasets import DATASETS
from litdemo.clip.hub_datasets import clean_class_name

datasets = pytest.importorskip("datasets")   # the `test` extra installs it (pyproject.toml)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _save_picture(path, value, size=(8, 6), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value // 2, 255 - value)).save(path, format=fmt)


def _pixel(image):
    return tuple(int(c) for c in np.asarray(image)[0, 0])


# --- torchvision StanfordCars ---------------------------------------------------------------
CAR_NAMES = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Ram C/V Cargo Van Minivan 2012"]


def _annotations(rows):
    """The devkit's struct array: one record per image, class numbered from 1."""
    fields = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")
    table = np.zeros((1, len(rows)), dtype=[(f, "O") for f in fields])
    for k, (fname, class_number) in enumerate(rows):
        table[0, k] = (np.uint8(0), np.uint8(0), np.uint8(7), np.uint8(5), np.uint8(class_number), fname)
    return {"annotations": table}


def make_fake_cars(root):
    """root/stanford_cars/ as torchvision reads it; test images 00001..3, train images 00001..2."""
    cars = root / "stanford_cars"
    (cars / "devkit").mkdir(parents=True)
    scipy.io.savemat(cars / "devkit" / "cars_meta.mat", {"class_names": np.array([CAR_NAMES], dtype=object)})
    scipy.io.savemat(cars / "cars_test_annos_withlabels.mat",
                     _annotations([("00001.png", 3), ("00002.png", 1), ("00003.png", 2)]))
    scipy.io.savemat(cars / "devkit" / "cars_train_annos.mat", _annotations([("00001.png", 2), ("00002.png", 2)]))
    for k, value in enumerate([30, 60, 90], start=1):
        _save_picture(cars / "cars_test" / f"{k:05d}.png", value, size=(8 + k, 6))
    for k, value in enumerate([120, 150], start=1):
        _save_picture(cars / "cars_train" / f"{k:05d}.png", value)
    return cars


def test_torchvision_stanford_cars_layout(tmp_path):
    cars = make_fake_cars(tmp_path)
    test = torchvision_cars(tmp_path, split="test")
    assert isinstance(test, TorchvisionClipDataset) and test.name == "torchvision-cars-test"
    assert test.class_names == CAR_NAMES and test.labels == [2, 0, 1] and len(test) == 3
    assert [p.name for p in test.paths] == ["00001.png", "00002.png", "00003.png"]
    assert test.image_id(1) == str(cars / "cars_test" / "00002.png")
    picture = test.image(2)
    assert picture.mode == "RGB" and picture.size == (11, 6) and _pixel(picture) == (90, 45, 165)
    assert test.label_name(0) == "Ram C/V Cargo Van Minivan 2012"   # its "/" is kept

    # Through load_dataset, with root being stanford_cars/ itself; 'all' joins train and test.
    both = load_dataset("torchvision-cars", cars, split="all")
    assert len(both) == 5 and both.labels == [2, 0, 1, 1, 1]   # ordered by path: cars_test/ before cars_train/
    assert _pixel(both.image(4)) == (150, 75, 105)
    assert load_dataset("torchvision-cars", tmp_path, split="train").labels == [1, 1]
    # The same files read by our own devkit loader give the same classes and labels.
    ours = load_dataset("cars", tmp_path, split="test")
    assert (ours.class_names, ours.labels) == (test.class_names, test.labels)

    with pytest.raises(DatasetLayoutError, match="cars_meta.mat"):
        load_dataset("torchvision-cars", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="split='val'"):
        load_dataset("torchvision-cars", tmp_path, split="val")


# --- torchvision SUN397 ---------------------------------------------------------------------
def make_fake_sun397(root):
    """root/SUN397/ClassName.txt and root/SUN397/<letter>/<class path>/sun_*.jpg, as torchvision reads it."""
    sun = root / "SUN397"
    sun.mkdir(parents=True)
    (sun / "ClassName.txt").write_text("/a/abbey\n/a/apartment_building/outdoor\n/b/bakery/shop\n")
    for rel, value, size in [("a/abbey/sun_b.jpg", 200, (10, 8)), ("a/abbey/sun_a.jpg", 20, (8, 6)),
                             ("a/apartment_building/outdoor/sun_c.jpg", 100, (8, 6)),
                             ("b/bakery/shop/sun_d.jpg", 160, (12, 9))]:
        _save_picture(sun / rel, value, size=size, fmt="JPEG")
    return sun


def test_torchvision_sun397_layout(tmp_path):
    sun = make_fake_sun397(tmp_path / "data")
    ds = load_dataset("torchvision-sun397", tmp_path / "data")
    assert ds.name == "torchvision-sun397-all" and len(ds) == 4
    assert ds.class_names == ["abbey", "apartment building outdoor", "bakery shop"]
    # Ordered by path, whatever order the file system listed them in.
    assert [p.name for p in ds.paths] == ["sun_a.jpg", "sun_b.jpg", "sun_c.jpg", "sun_d.jpg"]
    assert ds.labels == [0, 0, 1, 2]
    picture = ds.image(3)
    assert picture.mode == "RGB" and picture.size == (12, 9)
    assert np.allclose(_pixel(picture), (160, 80, 95), atol=4)   # JPEG: nearly exact on a flat colour
    # SUN397/ itself works as root, and our ClassName.txt loader agrees on names and labels.
    again = torchvision_sun397(sun)
    assert again.labels == ds.labels and again.paths == ds.paths
    ours = load_dataset("sun397", tmp_path / "data")
    assert ours.class_names == ds.class_names
    assert dict(zip(ours.paths, ours.labels)) == dict(zip(ds.paths, ds.labels))
    with pytest.raises(DatasetLayoutError, match="ClassName.txt"):
        torchvision_sun397(tmp_path / "nowhere")


# --- any torchvision classification dataset -------------------------------------------------
def test_any_torchvision_dataset_reads_labels_without_decoding(tmp_path):
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import ToTensor

    _save_picture(tmp_path / "001.snow_bunting" / "a.png", 10)
    _save_picture(tmp_path / "001.snow_bunting" / "b.png", 20)
    _save_picture(tmp_path / "wren" / "c.png", 30, size=(5, 7))
    decoded = []

    def counting_loader(path):
        decoded.append(path)
        return Image.open(path).convert("RGB")

    ds = TorchvisionClipDataset(ImageFolder(tmp_path, loader=counting_loader), name="birds")
    assert decoded == []   # labels came from ImageFolder's own list
    assert ds.class_names == ["snow bunting", "wren"] and ds.labels == [0, 0, 1]
    picture = ds.image(2)
    assert _pixel(picture) == (30, 15, 225) and picture.size == (5, 7) and len(decoded) == 1
    # A transform that makes CHW float tensors comes back as the same RGB picture.
    tensors = TorchvisionClipDataset(ImageFolder(tmp_path, transform=ToTensor()))
    assert np.array_equal(np.asarray(tensors.image(1)), np.asarray(ds.image(1)))
    # A target_transform is applied to the stored labels, as __getitem__ would.
    flipped = TorchvisionClipDataset(ImageFolder(tmp_path, target_transform=lambda y: 1 - y))
    assert flipped.labels == [1, 1, 0]


def test_class_names_are_cleaned_for_prompts():
    assert clean_class_name("001.Black_footed_Albatross") == "Black footed Albatross"
    assert clean_class_name("apartment_building/outdoor") == "apartment building outdoor"
    assert clean_class_name("/b/bakery/shop") == "bakery shop"
    assert clean_class_name("Ram C/V Cargo Van Minivan 2012") == "Ram C/V Cargo Van Minivan 2012"
    assert clean_class_name("1.5 litre bottle") == "1.5 litre bottle"


class GreyDigits:
    """A torchvision-style dataset that keeps no label list: labels must be read by iterating."""
    classes = ["zero_digit", "one_digit"]

    def __len__(self):
        return 3

    def __getitem__(self, index):
        return Image.new("L", (4, 4), 50 * index), index % 2


def test_torchvision_wrapper_falls_back_to_iterating_and_converts_to_rgb():
    ds = TorchvisionClipDataset(GreyDigits())
    assert ds.class_names == ["zero digit", "one digit"] and ds.labels == [0, 1, 0]
    assert ds.name == "greydigits" and ds.paths is None and ds.image_id(2) == "greydigits-000002"
    assert ds.image(2).mode == "RGB" and _pixel(ds.image(2)) == (100, 100, 100)
    no_classes = GreyDigits()
    no_classes.classes = None
    with pytest.raises(ValueError, match="class_names="):
        TorchvisionClipDataset(no_classes)
    assert TorchvisionClipDataset(no_classes, class_names=["even_", "odd"]).class_names == ["even_", "odd"]


# --- Hugging Face datasets ------------------------------------------------------------------
BIRD_NAMES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]
CLEAN_BIRD_NAMES = ["Black footed Albatross", "Laysan Albatross", "Sooty Albatross"]


def make_hf_table(labels=(0, 1, 2, 0, 1, 2), size=(9, 7)):
    pictures = [Image.new("RGB", size, (40 * k, 10, 200 - 20 * k)) for k in range(len(labels))]
    pictures[1] = pictures[1].convert("L")   # one grey picture: must come back as RGB
    features = datasets.Features({"picture": datasets.Image(), "species": datasets.ClassLabel(names=BIRD_NAMES),
                                  "caption": datasets.Value("string")})
    return datasets.Dataset.from_dict({"picture": pictures, "species": list(labels),
                                       "caption": [f"bird {k}" for k in range(len(labels))]}, features=features)


def _check_birds(ds, labels=(0, 1, 2, 0, 1, 2)):
    assert isinstance(ds, HuggingFaceClipDataset)
    assert ds.class_names == CLEAN_BIRD_NAMES and ds.labels == list(labels) and len(ds) == len(labels)
    assert ds.image_column == "picture" and ds.label_column == "species"
    assert ds.image(3).size == (9, 7) and _pixel(ds.image(3)) == (120, 10, 140)
    assert ds.image(1).mode == "RGB" and len(set(_pixel(ds.image(1)))) == 1


def test_hf_dataset_object_with_detected_columns():
    table = make_hf_table()
    ds = load_dataset("hf", table)
    _check_birds(ds)
    assert ds.name == "hf-dataset-test" and ds.templates == ("a photo of a {}.",)
    named = hf_dataset(table, image_column="picture", label_column="species", name="birds",
                       templates=("a photo of a {}, a type of bird.",))
    assert named.name == "birds" and named.labels == ds.labels and "bird" in named.templates[0]


def test_hf_save_to_disk_folders(tmp_path):
    table = make_hf_table()
    table.save_to_disk(str(tmp_path / "one"))
    _check_birds(load_dataset("hf", tmp_path / "one"))   # a single Dataset is used whole
    splits = datasets.DatasetDict({"train": table.select([0, 1]), "test": table.select([2, 3, 4, 5])})
    splits.save_to_disk(str(tmp_path / "two"))
    test = load_dataset("hf", tmp_path / "two", split="test")
    assert test.name == "hf-two-test" and test.labels == [2, 0, 1, 2]
    _check_birds(load_dataset("hf", tmp_path / "two", split="all"), labels=(0, 1, 2, 0, 1, 2))
    with pytest.raises(ValueError, match="no split 'validation'; its splits: train, test"):
        load_dataset("hf", tmp_path / "two", split="validation")


def test_hf_local_parquet_and_image_folders(tmp_path):
    table = make_hf_table()
    (tmp_path / "parquet" / "data").mkdir(parents=True)
    table.select([0, 1, 2, 3]).to_parquet(str(tmp_path / "parquet" / "data" / "train-00000-of-00001.parquet"))
    table.select([4, 5]).to_parquet(str(tmp_path / "parquet" / "data" / "test-00000-of-00001.parquet"))
    cache = str(tmp_path / "hf-cache")   # keep load_dataset's prepared copies out of the home folder
    test = load_dataset("hf", tmp_path / "parquet", split="test", cache_dir=cache)
    assert test.name == "hf-parquet-test" and test.class_names == CLEAN_BIRD_NAMES and test.labels == [1, 2]
    assert _pixel(test.image(1)) == (200, 10, 100)
    assert len(load_dataset("hf", tmp_path / "parquet", split="train", cache_dir=cache)) == 4
    with pytest.raises(ValueError, match="no split 'validation'.*--split"):
        load_dataset("hf", tmp_path / "parquet", split="validation", cache_dir=cache)

    # datasets' image-folder layout: <split>/<class>/<image>; the folder names become ClassLabel names.
    for split, value in [("train", 10), ("test", 50)]:
        _save_picture(tmp_path / "images" / split / "001.Black_footed_Albatross" / "a.png", value)
        _save_picture(tmp_path / "images" / split / "Laysan_Albatross" / "b.png", value + 100, size=(6, 6))
    folder = load_dataset("hf", tmp_path / "images", split="test", cache_dir=cache)
    assert folder.class_names == ["Black footed Albatross", "Laysan Albatross"]
    assert sorted(zip(folder.labels, [_pixel(folder.image(i)) for i in range(2)])) == \
        [(0, (50, 25, 205)), (1, (150, 75, 105))]

    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="no data files"):
        load_dataset("hf", tmp_path / "empty", cache_dir=cache)


def test_hf_column_detection_errors_and_overrides():
    table = make_hf_table()
    two_images = table.add_column("sketch", [None] * len(table)).cast_column("sketch", datasets.Image())
    with pytest.raises(DatasetColumnError, match=r"several Image columns \(picture, sketch\).*image_column="):
        hf_dataset(two_images)
    assert hf_dataset(two_images, image_column="picture").labels == [0, 1, 2, 0, 1, 2]

    plain = table.cast_column("species", datasets.Value("int64"))
    with pytest.raises(DatasetColumnError, match=r"no ClassLabel column. Columns: picture \(Image\), "
                                                 r"species \(Value int64\), caption \(Value string\)"):
        hf_dataset(plain)
    with pytest.raises(DatasetColumnError, match="no class names.*ClassLabel"):
        hf_dataset(plain, label_column="species")
    with pytest.raises(DatasetColumnError, match="'wingspan' is not a column.*picture \\(Image\\)"):
        hf_dataset(table, label_column="wingspan")
    with pytest.raises(DatasetColumnError, match="'caption' is Value string, not an Image"):
        hf_dataset(table, image_column="caption")
    # Images stored undecoded (bytes and paths) are decoded on read.
    raw = table.cast_column("picture", datasets.Image(decode=False))
    assert _pixel(hf_dataset(raw).image(3)) == (120, 10, 140)
    # A column of strings works as labels: sorted names.
    by_caption = hf_dataset(table.select([0, 1, 2]), label_column="caption")
    assert by_caption.class_names == ["bird 0", "bird 1", "bird 2"] and by_caption.labels == [0, 1, 2]
    # An unlabelled split (-1) says so.
    unlabelled = make_hf_table(labels=(0, -1, 1))
    with pytest.raises(DatasetColumnError, match="1 of 3 rows have no label"):
        hf_dataset(unlabelled)


def test_hf_missing_or_shadowed_package_says_what_to_install(monkeypatch):
    table = make_hf_table()
    monkeypatch.setitem(sys.modules, "datasets", None)   # what `import datasets` sees when not installed
    with pytest.raises(ImportError, match=r"pip install 'litdemo\[clip-data\]'"):
        load_dataset("hf", table)
    monkeypatch.setitem(sys.modules, "datasets", types.ModuleType("datasets"))   # e.g. our clip/datasets.py
    with pytest.raises(ImportError, match="not Hugging Face datasets"):
        hf_dataset(table)


def test_unreachable_hub_name_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)   # read at import time: set it too
    with pytest.raises(DatasetUnavailableError, match="no-such-org/no-such-birds.*--local-dir DIR.*HF_HUB_OFFLINE"):
        load_dataset("hf", "no-such-org/no-such-birds", split="test")


def test_load_dataset_names_and_errors():
    assert {"torchvision-cars", "torchvision-sun397", "hf", "cub", "cars", "sun397"} <= set(DATASETS)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*torchvision-cars.*hf"):
        load_dataset("imagenet", "x")
    with pytest.raises(ValueError, match="Hugging Face Hub name or local folder"):
        load_dataset("hf")
    with pytest.raises(ValueError, match="'cub' takes no options \\(got image_column\\)"):
        load_dataset("cub", "x", image_column="picture")


# --- end to end: a wrapped dataset through the CLIP benchmark -------------------------------
def test_hf_dataset_runs_through_clip_bench_cli(tmp_path, capsys):
    labels = [k % 3 for k in range(9)]
    table = make_hf_table(labels=labels, size=(16, 16)).rename_column("species", "kind")
    table.save_to_disk(str(tmp_path / "birds"))
    out = tmp_path / "run"
    code = clip_cli(["clip-bench", "--dataset", "hf", "--root", str(tmp_path / "birds"),
                     "--image-column", "picture", "--label-column", "kind", "--modes", "zero-shot", "lit-ft",
                     "--seeds", "0", "--stream-length", "6", "--eval-size", "3", "--out", str(out)])
    assert code == 0 and "lit-ft" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["mode"] for r in rows] == ["zero-shot", "lit-ft"]
    assert all(r["dataset"] == "hf-birds-test" and r["stream_length"] == "6" for r in rows)
    assert all(0 <= int(r["corrections"]) <= 6 for r in rows)
