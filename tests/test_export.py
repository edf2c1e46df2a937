"""Export: palette PNGs of the right size and values, an overlay video, the history, the adapters."""
import json

import numpy as np
import pytest
from PIL import Image

from litdemo.config import LitConfig
from litdemo.session import LitSession


def test_export_writes_everything_readable(predictor, square_video, tmp_path):
    import imageio.v2 as imageio

    frames, masks = square_video
    s = LitSession(predictor, frames, LitConfig(mode="lit-lora", steps_first=5))
    s.prompt(0, 1, mask=masks[0])
    s.prompt(0, 4, points=[[5, 5]], labels=[1])
    s.propagate_all()
    s.correct(3, 1, mask=masks[3])
    paths = s.export(tmp_path / "out")
    pngs = sorted(paths["masks"].glob("*.png"))
    assert len(pngs) == len(frames)
    img = Image.open(pngs[3])
    assert img.mode == "P" and img.size == (frames.shape[2], frames.shape[1])
    labels = np.asarray(img)
    assert set(np.unique(labels)) <= {0, 1, 2}
    assert np.array_equal(labels == 1, s.mask(3, 1) & ~s.mask(3, 4))  # obj 1 -> index 1 (obj 4 drawn on top)
    assert json.loads((paths["masks"] / "objects.json").read_text()) == {"1": 1, "2": 4}
    reader = imageio.get_reader(str(paths["overlay"]))
    n = sum(1 for _ in reader)
    assert n == len(frames)
    history = json.loads(paths["history"].read_text())
    assert [e["kind"] for e in history["events"]] == ["prompt", "prompt", "correction"]
    adapter = paths["adapters"] / "obj_1" / "adapter_0"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4


def test_export_refuses_to_overwrite_by_default(predictor, square_video, tmp_path):
    frames, masks = square_video
    s = LitSession(predictor, frames, LitConfig(mode="sam2"))
    s.prompt(0, 1, mask=masks[0])
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        s.export(out, overlay_video=False)
    assert (out / "keep.txt").read_text() == "mine"
    s.export(out, overlay_video=False, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "history.json").is_file()
