"""The simulated-user benchmark, the dataset layouts and the clip-bench CLI, offline."""
from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest
from PIL import Image

from litdemo.clip import DatasetLayoutError, load_dataset, make_stream, run_clip_benchmark
from litdemo.clip.cli import main as clip_cli
from litdemo.clip.plots import confusion_matrix

logging.getLogger().setLevel(logging.ERROR)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def test_lit_full_finetune_needs_fewer_corrections_than_zero_shot_on_untrained_clip(tmp_path):
    # Mechanics check, not the paper's claim: an untrained CLIP, the synthetic set, and the mode
    # that learns on random weights (docs/clip.md has the numbers for every mode).
    seeds = (0, 1, 2)
    result = run_clip_benchmark("synthetic", model="tiny-untrained", modes=("zero-shot", "lit-ft"), seeds=seeds,
                                stream_length=40, dataset_kwargs={"num_classes": 6, "images_per_class": 20},
                                out_dir=tmp_path / "bench")
    by = {(r["mode"], r["seed"]): r for r in result.rows}
    for seed in seeds:
        base, lit = by[("zero-shot", seed)], by[("lit-ft", seed)]
        assert lit["corrections"] < base["corrections"], (seed, base["corrections"], lit["corrections"])
        assert lit["reduction_pct"] == pytest.approx(100 * (base["corrections"] - lit["corrections"])
                                                     / base["corrections"], abs=0.05)
        assert base["stream_accuracy"] == pytest.approx(1 - base["corrections"] / 40)
    summary = {r["mode"]: r for r in result.summary()}
    assert summary["lit-ft"]["reduction_pct_mean"] > 0
    # Everything was written, and the CSV holds the same numbers as the returned rows.
    files = {p.name for p in (tmp_path / "bench").iterdir()}
    assert {"results.csv", "results.json", "results.md", "cumulative_corrections.png",
            "confusion_lit-ft.png"} <= files
    with open(tmp_path / "bench" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["corrections"]) for r in rows] == [r["corrections"] for r in result.rows]
    saved = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert [c["cumulative"][-1] for c in saved["cumulative"]] == [r["corrections"] for r in result.rows]
    assert Image.open(tmp_path / "bench" / "cumulative_corrections.png").size[0] > 100
    assert "untrained" in result.to_markdown()


def test_confusion_matrix_counts():
    cm = confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]


def test_streams_are_seeded_and_checked():
    ds = load_dataset("synthetic", num_classes=3, images_per_class=4)
    assert make_stream(ds, 5, seed=1) == make_stream(ds, 5, seed=1) != make_stream(ds, 5, seed=2)
    assert len(set(make_stream(ds, 12, seed=0))) == 12
    with pytest.raises(ValueError, match="stream length 13"):
        make_stream(ds, 13, seed=0)
    twice = load_dataset("synthetic", num_classes=3, images_per_class=4, seed=7)
    assert np.array_equal(np.asarray(ds.image(5)), np.asarray(load_dataset(
        "synthetic", num_classes=3, images_per_class=4).image(5)))
    assert twice.class_names != ds.class_names or not np.array_equal(np.asarray(twice.image(5)),
                                                                    np.asarray(ds.image(5)))


def _png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)


def test_image_folder_layout(tmp_path):
    _png(tmp_path / "snow_bunting" / "a.png", 10)
    _png(tmp_path / "snow_bunting" / "b.png", 20)
    _png(tmp_path / "wren" / "c.png", 30)
    (tmp_path / "empty").mkdir()
    ds = load_dataset("folder", tmp_path)
    assert ds.class_names == ["snow bunting", "wren"] and ds.labels == [0, 0, 1]
    assert np.asarray(ds.image(2))[0, 0, 0] == 30
    _png(tmp_path / "one_class" / "x" / "1.png", 1)
    with pytest.raises(DatasetLayoutError, match="1 class folder"):
        load_dataset("folder", tmp_path / "one_class")
    with pytest.raises(DatasetLayoutError, match="missing"):
        load_dataset("folder", tmp_path / "no_such_folder")


def test_cub_layout_and_missing_file(tmp_path):
    root = tmp_path / "CUB_200_2011"
    _png(root / "images" / "001.Black_footed_Albatross" / "a.jpg", 1)
    _png(root / "images" / "002.Laysan_Albatross" / "b.jpg", 2)
    _png(root / "images" / "002.Laysan_Albatross" / "c.jpg", 3)
    (root / "classes.txt").write_text("1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")
    (root / "images.txt").write_text("1 001.Black_footed_Albatross/a.jpg\n2 002.Laysan_Albatross/b.jpg\n"
                                     "3 002.Laysan_Albatross/c.jpg\n")
    (root / "image_class_labels.txt").write_text("1 1\n2 2\n3 2\n")
    (root / "train_test_split.txt").write_text("1 0\n2 1\n3 0\n")
    test = load_dataset("cub", tmp_path)   # the folder holding CUB_200_2011/ works too
    assert test.class_names == ["Black footed Albatross", "Laysan Albatross"]
    assert test.labels == [0, 1] and test.paths[1].name == "c.jpg"
    assert "bird" in test.templates[0]
    assert len(load_dataset("cub", root, split="all")) == 3
    (root / "image_class_labels.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="image_class_labels.txt"):
        load_dataset("cub", root)


def test_coop_split_layouts_for_cars_and_sun397(tmp_path):
    cars = tmp_path / "stanford_cars"
    _png(cars / "cars_test" / "00001.jpg", 5)
    _png(cars / "cars_test" / "00002.jpg", 6)
    split = {"train": [], "val": [], "test": [["cars_test/00001.jpg", 1, "2012 Tesla Model S"],
                                              ["cars_test/00002.jpg", 0, "2012 BMW M3 coupe"]]}
    (cars / "split_zhou_StanfordCars.json").write_text(json.dumps(split))
    ds = load_dataset("cars", tmp_path)
    assert ds.class_names == ["2012 BMW M3 coupe", "2012 Tesla Model S"] and ds.labels == [1, 0]
    assert np.asarray(ds.image(1))[0, 0, 0] == 6

    sun = tmp_path / "sun397" / "SUN397"
    _png(sun / "a" / "abbey" / "sun_1.jpg", 7)
    _png(sun / "b" / "bakery" / "shop" / "sun_2.jpg", 8)
    (sun / "ClassName.txt").write_text("/a/abbey\n/b/bakery/shop\n")
    ds = load_dataset("sun397", tmp_path)
    assert ds.class_names == ["abbey", "bakery shop"] and ds.labels == [0, 1]
    with pytest.raises(DatasetLayoutError, match="ClassName.txt"):
        load_dataset("sun397", tmp_path / "nowhere")


def test_clip_bench_cli_writes_results(tmp_path, capsys):
    out = tmp_path / "cli"
    code = clip_cli(["clip-bench", "--model", "tiny-untrained", "--modes", "zero-shot", "lit-lora", "--seeds", "0",
                     "--stream-length", "8",
                     "--num-classes", "3", "--images-per-class", "4", "--eval-size", "4", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "untrained" in text and "lit-lora" in text
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["mode"] for r in rows] == ["zero-shot", "lit-lora"] and all(r["stream_length"] == "8" for r in rows)
    with pytest.raises(SystemExit):
        clip_cli(["clip-bench", "--dataset", "imagenet"])
