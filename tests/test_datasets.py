"""Loaders, writers and the synthetic generator: round trips, real DAVIS data, bad-data errors."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from litdemo.datasets import (
    DATASETS, DatasetError, VideoSample, decode_rle, encode_rle, iter_videos, list_davis_sequences,
    list_sav_videos, list_sequences, load_dataset, load_davis, load_lvos, load_mose, load_sav,
    load_vost, make_synthetic_video, save_davis_layout, save_sav_layout,
)
from litdemo.datasets.base import davis_palette


@pytest.fixture(scope="module")
def two_objects() -> VideoSample:
    return make_synthetic_video(num_frames=12, height=64, width=80, num_objects=2, seed=3)


def davis_root() -> Path:
    root = os.environ.get("LITDEMO_DAVIS_ROOT")
    if not root or not Path(root).is_dir():
        pytest.skip("LITDEMO_DAVIS_ROOT is not set to the DAVIS data folder")
    return Path(root)


def assert_same_gt(a: VideoSample, b: VideoSample):
    assert a.object_ids() == b.object_ids()
    for k in a.object_ids():
        assert sorted(a.gt[k]) == sorted(b.gt[k])
        for t in a.gt[k]:
            assert np.array_equal(a.gt[k][t], b.gt[k][t]), (k, t)


# --------------------------------------------------------------------------- synthetic videos

def test_synthetic_is_deterministic_per_seed():
    a, b = make_synthetic_video(num_frames=8, seed=5), make_synthetic_video(num_frames=8, seed=5)
    assert np.array_equal(a.frames, b.frames)
    assert_same_gt(a, b)
    c = make_synthetic_video(num_frames=8, seed=6)
    assert not np.array_equal(a.frames, c.frames)
    assert a.frames.shape == (8, 128, 160, 3) and a.frames.dtype == np.uint8


def test_synthetic_gt_on_every_frame_and_never_empty():
    for seed in range(4):
        v = make_synthetic_video(num_frames=30, num_objects=2, seed=seed)
        for k in v.object_ids():
            assert sorted(v.gt[k]) == list(range(30))
            assert all(v.gt[k][t].sum() > 50 for t in range(30)), (seed, k)
        assert v.first_annotated_frame(1) == 0
        # separate bands: the objects never cover each other
        assert not any((v.gt[1][t] & v.gt[2][t]).any() for t in range(30))


def test_synthetic_occluder_hides_part_of_object_mid_video():
    with_bar = make_synthetic_video(num_frames=30, seed=1, occlusion=True)
    without = make_synthetic_video(num_frames=30, seed=1, occlusion=False)
    hidden = [int((without.gt[1][t] & ~with_bar.gt[1][t]).sum()) for t in range(30)]
    assert all((with_bar.gt[1][t] <= without.gt[1][t]).all() for t in range(30))  # only removes pixels
    assert hidden[14] > 0 or hidden[15] > 0  # the bar crosses object 1 at mid-video
    assert sum(h > 0 for h in hidden) >= 2
    assert hidden[0] == 0


def _pixels_like_object(v: VideoSample) -> int:
    """Pixels outside the GT whose colour is close to object 1's mean colour (frame 0)."""
    frame, mask = v.frames[0].astype(float), v.gt[1][0]
    colour = frame[mask].mean(axis=0)
    close = np.linalg.norm(frame - colour, axis=-1) < 40
    return int((close & ~mask).sum())


def test_synthetic_distractor_looks_like_the_object_but_is_not_gt():
    kw = dict(num_frames=2, seed=2, occlusion=False)
    with_twin = make_synthetic_video(distractor=True, **kw)
    alone = make_synthetic_video(distractor=False, **kw)
    assert _pixels_like_object(with_twin) > 300 > _pixels_like_object(alone)


def test_synthetic_camouflage_lowers_contrast():
    def contrast(v):
        import cv2
        mask = v.gt[1][0].astype(np.uint8)
        ring = cv2.dilate(mask, np.ones((9, 9), np.uint8)).astype(bool) & ~mask.astype(bool)
        frame = v.frames[0].astype(float)
        return np.linalg.norm(frame[mask.astype(bool)].mean(0) - frame[ring].mean(0))

    kw = dict(num_frames=1, seed=0, occlusion=False, distractor=False)
    assert contrast(make_synthetic_video(camouflage=True, **kw)) < 0.5 * contrast(make_synthetic_video(**kw))


def test_synthetic_deformation_changes_shape():
    def shape_change(v, t0=0, t1=12):
        # IoU of the masks after moving both centroids to the image centre
        def centred(m):
            ys, xs = np.nonzero(m)
            return np.roll(m, (64 - round(ys.mean()), 80 - round(xs.mean())), axis=(0, 1))
        a, b = centred(v.gt[1][t0]), centred(v.gt[1][t1])
        return (a & b).sum() / (a | b).sum()

    kw = dict(num_frames=13, seed=4, occlusion=False, distractor=False)
    assert shape_change(make_synthetic_video(deform=True, **kw)) < 0.9
    assert shape_change(make_synthetic_video(deform=False, **kw)) > 0.95


def test_synthetic_rejects_bad_arguments():
    with pytest.raises(DatasetError, match="num_objects"):
        make_synthetic_video(num_objects=9, height=64)
    with pytest.raises(DatasetError, match="noise"):
        make_synthetic_video(noise=-1)


def test_video_sample_validates_and_answers():
    frames = np.zeros((3, 4, 5, 3), np.uint8)
    m = np.zeros((4, 5), bool)
    v = VideoSample("x", frames, {2: {0: m, 2: m | np.eye(4, 5, dtype=bool)}})
    assert v.object_ids() == [2] and v.first_annotated_frame(2) == 2
    assert v.gt_mask(2, 1) is None and v.gt_mask(2, 0) is m
    with pytest.raises(DatasetError, match="frame 5"):
        VideoSample("x", frames, {1: {5: m}})
    with pytest.raises(DatasetError, match=r"\(4, 5\)"):
        VideoSample("x", frames, {1: {0: np.zeros((3, 3), bool)}})
    with pytest.raises(DatasetError, match="empty GT"):
        VideoSample("x", frames, {1: {0: m}}).first_annotated_frame(1)


# --------------------------------------------------------------------------- DAVIS layout

def test_davis_layout_round_trip(tmp_path, two_objects):
    save_davis_layout(two_objects, tmp_path)
    assert sorted(p.name for p in (tmp_path / "Annotations/480p/synthetic-3").iterdir())[:2] == ["00000.png", "00001.png"]
    with Image.open(tmp_path / "Annotations/480p/synthetic-3/00000.png") as im:
        assert im.mode == "P"  # DAVIS 2017 style palette PNG
    loaded = load_davis(tmp_path, "synthetic-3")
    assert_same_gt(two_objects, loaded)
    assert loaded.frames.shape == two_objects.frames.shape
    assert np.abs(loaded.frames.astype(int) - two_objects.frames).mean() < 4  # JPEG q95
    assert list_davis_sequences(tmp_path) == ["synthetic-3"]
    with pytest.raises(FileExistsError):
        save_davis_layout(two_objects, tmp_path)
    assert not [p for p in (tmp_path / "JPEGImages/480p").iterdir() if p.name.startswith(".")]  # no temp dirs


def test_davis_max_frames_and_max_side(tmp_path, two_objects):
    save_davis_layout(two_objects, tmp_path)
    v = load_davis(tmp_path, "synthetic-3", max_frames=5, max_side=40)
    assert v.frames.shape == (5, 32, 40, 3)
    assert sorted(v.gt[1]) == list(range(5)) and v.gt[1][0].shape == (32, 40)


def test_davis_void_label_is_background_and_2016_binary(tmp_path, two_objects):
    save_davis_layout(two_objects, tmp_path)
    png = tmp_path / "Annotations/480p/synthetic-3/00001.png"
    with Image.open(png) as im:
        labels = np.asarray(im).copy()
    labels[:5, :5] = 255  # void corner
    out = Image.fromarray(labels, mode="P")
    out.putpalette(davis_palette().reshape(-1).tolist())
    out.save(png)
    v = load_davis(tmp_path, "synthetic-3")
    assert v.object_ids() == [1, 2] and not v.gt[1][1][:5, :5].any() and not v.gt[2][1][:5, :5].any()
    # DAVIS 2016 style: grey 0/255 PNG -> one object with id 1
    grey = (two_objects.gt[2][1] * 255).astype(np.uint8)
    for t in range(two_objects.num_frames):
        Image.fromarray((two_objects.gt[2][t] * 255).astype(np.uint8), mode="L").save(png.with_name(f"{t:05d}.png"))
    v = load_davis(tmp_path, "synthetic-3")
    assert v.object_ids() == [1] and np.array_equal(v.gt[1][1], grey > 0)


def test_real_davis_loads():
    root = davis_root()
    names = list_davis_sequences(root)
    assert len(names) == 10 and "blackswan" in names
    v = load_davis(root, "blackswan")
    assert v.frames.shape == (50, 480, 854, 3) and v.fps == 24.0
    assert v.object_ids() == [1] and sorted(v.gt[1]) == list(range(50))
    with Image.open(root / "Annotations/480p/blackswan/00010.png") as im:
        assert np.array_equal(v.gt[1][10], np.asarray(im) > 0)
    small = load_dataset("davis", root, "car-shadow", max_frames=3, max_side=427)
    assert small.frames.shape == (3, 240, 427, 3)


def test_real_davis_unknown_sequence_lists_available():
    with pytest.raises(DatasetError, match="no such sequence 'bear'.*blackswan"):
        load_davis(davis_root(), "bear")


# --------------------------------------------------------------------------- bad data

@pytest.fixture
def davis_copy(tmp_path, two_objects) -> Path:
    save_davis_layout(two_objects, tmp_path)
    return tmp_path


def _seq(root: Path, kind: str) -> Path:
    return root / kind / "480p" / "synthetic-3"


def test_missing_frame_is_named(davis_copy):
    (_seq(davis_copy, "JPEGImages") / "00004.jpg").unlink()
    (_seq(davis_copy, "Annotations") / "00004.png").unlink()
    with pytest.raises(DatasetError, match=r"missing frame .*00003.jpg.*00005.jpg"):
        load_davis(davis_copy, "synthetic-3")


def test_annotation_without_frame_is_named(davis_copy):
    shutil.copy(_seq(davis_copy, "Annotations") / "00000.png", _seq(davis_copy, "Annotations") / "00099.png")
    with pytest.raises(DatasetError, match="00099.png"):
        load_davis(davis_copy, "synthetic-3")


def test_mask_frame_size_mismatch_is_named(davis_copy):
    png = _seq(davis_copy, "Annotations") / "00002.png"
    Image.fromarray(np.zeros((10, 10), np.uint8), mode="L").save(png)
    with pytest.raises(DatasetError, match=r"00002.png is 10x10 .* 80x64"):
        load_davis(davis_copy, "synthetic-3")


def test_frame_size_mismatch_is_named(davis_copy):
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(_seq(davis_copy, "JPEGImages") / "00003.jpg")
    with pytest.raises(DatasetError, match="00003.jpg is 10x10"):
        load_davis(davis_copy, "synthetic-3")


def test_unreadable_files_are_named(davis_copy):
    (_seq(davis_copy, "Annotations") / "00001.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="cannot read annotation .*00001.png"):
        load_davis(davis_copy, "synthetic-3")
    (_seq(davis_copy, "JPEGImages") / "00002.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DatasetError, match="cannot read frame .*00002.jpg"):
        load_davis(davis_copy, "synthetic-3")


def test_empty_gt_is_reported(davis_copy):
    for png in _seq(davis_copy, "Annotations").iterdir():
        Image.fromarray(np.zeros((64, 80), np.uint8), mode="L").save(png)
    with pytest.raises(DatasetError, match="every ground-truth mask .* is empty"):
        load_davis(davis_copy, "synthetic-3")


def test_missing_root_and_resolution(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_davis(tmp_path / "nowhere", "x")
    (tmp_path / "JPEGImages").mkdir()
    with pytest.raises(DatasetError, match="resolution"):
        load_davis(tmp_path, "x")


# --------------------------------------------------------------------------- SA-V

def test_rle_hand_encoded_strings():
    # column-major runs, background first; counts < 32 are one char (value + 48)
    two_by_two = np.array([[0, 1], [0, 1]], bool)  # runs [2, 2]
    assert encode_rle(two_by_two) == {"size": [2, 2], "counts": "22"}
    assert np.array_equal(decode_rle({"size": [2, 2], "counts": "22"}), two_by_two)
    # 100 = 3 * 32 + 4 -> groups 4 (+0x20 'more' flag) and 3 -> chr(84) chr(51)
    assert decode_rle({"size": [10, 10], "counts": "T3"}).sum() == 0
    assert encode_rle(np.zeros((10, 10), bool))["counts"] == "T3"
    # runs [5, 10, 2, 4]: from the 4th run on, the difference to the run two back is stored:
    # 4 - 10 = -6 -> low 5 bits 26 (sign bit 0x10 set, nothing more) -> chr(74) 'J'
    col = np.array([0] * 5 + [1] * 10 + [0] * 2 + [1] * 4, bool)[:, None]
    assert encode_rle(col)["counts"] == "5:2J"
    assert np.array_equal(decode_rle({"size": [21, 1], "counts": "5:2J"}), col)
    # mask starting with foreground: a leading zero-length background run
    assert encode_rle(np.ones((1, 3), bool))["counts"] == "03"
    # uncompressed counts lists are accepted too
    assert np.array_equal(decode_rle({"size": [2, 2], "counts": [2, 2]}), two_by_two)


def test_rle_round_trip_random_masks():
    rng = np.random.default_rng(0)
    for p in (0.02, 0.5, 0.98):
        m = rng.random((37, 53)) < p
        assert np.array_equal(decode_rle(encode_rle(m)), m)
    big = np.zeros((300, 400), bool)
    big[50:250, 100:300] = True  # long runs -> multi-char values and negative deltas
    assert np.array_equal(decode_rle(encode_rle(big)), big)


def test_rle_bad_size_is_reported():
    with pytest.raises(DatasetError, match="demo.json.*sum to 4"):
        decode_rle({"size": [3, 3], "counts": "22"}, "demo.json")


def _sparse(sample: VideoSample, every: int) -> VideoSample:
    gt = {k: {t: m for t, m in v.items() if t % every == 0} for k, v in sample.gt.items()}
    return VideoSample(sample.name, sample.frames, gt, sample.fps)


def test_sav_val_layout_round_trip(tmp_path, two_objects):
    sparse = _sparse(two_objects, 4)  # SA-V annotates every 4th frame
    save_sav_layout(sparse, tmp_path)
    assert (tmp_path / "Annotations_6fps/synthetic-3/000/00004.png").is_file()
    assert not (tmp_path / "Annotations_6fps/synthetic-3/000/00001.png").exists()
    loaded = load_sav(tmp_path, "synthetic-3")
    assert_same_gt(sparse, loaded)  # folder 000 -> object 1, 001 -> object 2
    assert sorted(loaded.gt[1]) == [0, 4, 8] and loaded.num_frames == 12
    assert list_sav_videos(tmp_path) == ["synthetic-3"]
    assert load_dataset("sav", tmp_path, "synthetic-3", max_frames=6).num_frames == 6


def _write_sav_train(root: Path, sample: VideoSample, every: int = 4) -> tuple[Path, Path]:
    import imageio.v2 as imageio

    mp4 = root / f"{sample.name}.mp4"
    with imageio.get_writer(mp4, format="FFMPEG", fps=24, codec="libx264", quality=10,
                            macro_block_size=1) as writer:
        for frame in sample.frames:
            writer.append_data(frame)
    ids = sample.object_ids()
    annotated = range(0, sample.num_frames, every)
    meta = {
        "video_id": sample.name,
        "video_frame_count": sample.num_frames,
        "video_height": sample.height,
        "video_width": sample.width,
        "masklet_id": [k - 1 for k in ids],
        "masklet": [[encode_rle(sample.gt[k][t]) for k in ids] for t in annotated],
        "masklet_num": len(ids),
    }
    ann = root / f"{sample.name}_manual.json"
    ann.write_text(json.dumps(meta))
    return mp4, ann


def test_sav_train_layout_mp4_and_rle_json(tmp_path, two_objects):
    _write_sav_train(tmp_path, two_objects)
    v = load_sav(tmp_path, "synthetic-3")
    assert v.num_frames == 12 and v.fps == pytest.approx(24.0)
    assert v.object_ids() == [1, 2] and sorted(v.gt[1]) == [0, 4, 8]
    for k in (1, 2):
        for t in (0, 4, 8):
            assert np.array_equal(v.gt[k][t], two_objects.gt[k][t])
    assert np.abs(v.frames.astype(int) - two_objects.frames).mean() < 8  # lossy h264
    assert list_sav_videos(tmp_path) == ["synthetic-3"]
    short = load_sav(tmp_path, "synthetic-3", max_frames=5, max_side=40)
    assert short.frames.shape == (5, 32, 40, 3) and sorted(short.gt[1]) == [0, 4]


def test_sav_bad_json_and_missing_video_are_named(tmp_path, two_objects):
    mp4, ann = _write_sav_train(tmp_path, two_objects)
    ann.write_text("{not json")
    with pytest.raises(DatasetError, match="synthetic-3_manual.json"):
        load_sav(tmp_path, "synthetic-3")
    meta = {"masklet_id": [0], "masklet": [[{"size": [64, 80], "counts": "22"}]]}
    ann.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="synthetic-3_manual.json.*sum to 4"):
        load_sav(tmp_path, "synthetic-3")
    mp4.unlink()
    with pytest.raises(DatasetError, match="synthetic-3.mp4 is missing"):
        load_sav(tmp_path, "synthetic-3")
    with pytest.raises(DatasetError, match="no such SA-V video 'other'"):
        load_sav(tmp_path, "other")


def test_sav_json_beyond_video_is_reported(tmp_path, two_objects):
    _, ann = _write_sav_train(tmp_path, two_objects)
    meta = json.loads(ann.read_text())
    meta["masklet"] = meta["masklet"] * 2  # claims annotations up to frame 20 of a 12-frame video
    ann.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="annotates video frame 12 .* 12 frames"):
        load_sav(tmp_path, "synthetic-3")


# --------------------------------------------------------------------------- MOSE / LVOS / VOST

def test_mose_and_lvos_split_folders(tmp_path, two_objects):
    save_davis_layout(two_objects, tmp_path / "train", resolution=None)
    for load, name in ((load_mose, "mose"), (load_lvos, "lvos")):
        v = load(tmp_path, "synthetic-3", split="train")
        assert_same_gt(two_objects, v)
        assert load(tmp_path / "train", "synthetic-3").num_frames == 12  # split folder as root
        assert list_sequences(name, tmp_path, split="train") == ["synthetic-3"]
    (tmp_path / "train" / "train_meta.json").write_text(json.dumps({"videos": {"b": {}, "a": {}}}))
    assert list_sequences("lvos", tmp_path, split="train") == ["a", "b"]  # LVOS meta file wins
    with pytest.raises(DatasetError, match=r"split= one of \['train'\]"):
        load_mose(tmp_path, "synthetic-3", split=None)


def test_vost_frame_names_sparse_annotations_and_imagesets(tmp_path, two_objects):
    save_davis_layout(two_objects, tmp_path, resolution=None)
    frames, masks = tmp_path / "JPEGImages/synthetic-3", tmp_path / "Annotations/synthetic-3"
    for p in sorted(frames.iterdir()):
        p.rename(p.with_name(f"frame{int(p.stem):05d}.jpg"))
    for p in sorted(masks.iterdir()):
        if int(p.stem) % 3:
            p.unlink()  # annotated on every 3rd frame only
        else:
            p.rename(p.with_name(f"frame{int(p.stem):05d}.png"))
    (tmp_path / "ImageSets").mkdir()
    (tmp_path / "ImageSets/val.txt").write_text("synthetic-3\n")
    v = load_vost(tmp_path, "synthetic-3")
    assert v.num_frames == 12 and sorted(v.gt[1]) == [0, 3, 6, 9]
    assert np.array_equal(v.gt[2][6], two_objects.gt[2][6])
    assert list_sequences("vost", tmp_path, split="val") == ["synthetic-3"]


# --------------------------------------------------------------------------- registry

def test_registry_names_and_errors(tmp_path):
    assert set(DATASETS) == {"davis", "davis2017", "sav", "mose", "lvos", "vost", "synthetic", "procedural"}
    with pytest.raises(DatasetError, match="unknown dataset 'kitti'.*davis.*synthetic"):
        load_dataset("kitti", tmp_path, "x")
    with pytest.raises(DatasetError, match="needs root"):
        list_sequences("davis", None)
    v = load_dataset("synthetic", None, "synthetic-7", num_frames=6, num_objects=2)
    assert v.name == "synthetic-7" and v.num_frames == 6 and v.object_ids() == [1, 2]
    assert np.array_equal(v.frames, make_synthetic_video(num_frames=6, num_objects=2, seed=7).frames)
    with pytest.raises(DatasetError, match="synthetic-<seed>"):
        load_dataset("synthetic", None, "seven")


def test_iter_videos_is_lazy_and_uses_lists(tmp_path, two_objects):
    names = [v.name for v in iter_videos("synthetic", num_videos=3, num_frames=4)]
    assert names == ["synthetic-0", "synthetic-1", "synthetic-2"]
    save_davis_layout(two_objects, tmp_path)
    videos = list(iter_videos("davis2017", tmp_path, split=None, max_frames=3))
    assert [v.name for v in videos] == ["synthetic-3"] and videos[0].num_frames == 3
    it = iter_videos("davis", tmp_path, sequences=["synthetic-3", "missing"])
    assert next(it).name == "synthetic-3"
    with pytest.raises(DatasetError, match="missing"):
        next(it)
