"""Loading checkpoints and videos, and every kind of bad input the issue names."""
import numpy as np
import pytest
import torch
from PIL import Image

from litdemo.config import LitConfig
from litdemo.models import WeightsUnavailableError, build_architecture, load_sam2, save_checkpoint
from litdemo.session import LitSession
from litdemo.video_io import VideoError, load_video


def test_checkpoint_written_from_a_random_model_loads_through_the_real_code(tmp_path, monkeypatch):
    torch.manual_seed(1)
    source = build_architecture("tiny", image_size=256)
    path = save_checkpoint(source, tmp_path / "sam2.1_hiera_tiny.pt")
    loaded = load_sam2("tiny", checkpoint=path, image_size=256, device="cpu")
    assert not loaded.untrained and loaded.model_name == "tiny"
    ref = source.state_dict()
    assert all(torch.equal(ref[k], v) for k, v in loaded.state_dict().items())
    # the same file found through the checkpoint folder setting
    monkeypatch.setenv("LITDEMO_CHECKPOINT_DIR", str(tmp_path))
    again = load_sam2("tiny", image_size=256, device="cpu")
    assert torch.equal(again.sam_mask_decoder.iou_token.weight, source.sam_mask_decoder.iou_token.weight)


def test_checkpoint_of_another_size_is_refused(tmp_path):
    path = save_checkpoint(build_architecture("small", image_size=256), tmp_path / "small.pt")
    with pytest.raises(WeightsUnavailableError, match="another model size"):
        load_sam2("tiny", checkpoint=path, image_size=256, device="cpu")


def test_unreachable_weights_give_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("LITDEMO_CHECKPOINT_DIR", raising=False)
    monkeypatch.delenv("LITDEMO_SAM2_CHECKPOINT", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    with pytest.raises(WeightsUnavailableError) as err:
        load_sam2("tiny", image_size=256, device="cpu")
    text = str(err.value)
    assert "sam2.1_hiera_tiny.pt" in text and "LITDEMO_SAM2_CHECKPOINT" in text and "pretrained=False" in text
    assert "load_sam2('micro')" in text and "not SAM2.1" in text  # the offline way, named for what it is
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        load_sam2("tiny", checkpoint=tmp_path / "nope.pt", image_size=256, device="cpu")
    with pytest.raises(ValueError, match="available models: micro, tiny, small, base_plus, large"):
        load_sam2("huge", pretrained=False)


def test_video_sources_agree(tmp_path, square_video):
    frames, _ = square_video
    folder = tmp_path / "png"
    folder.mkdir()
    for t, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{t:05d}.png")
    from_folder = load_video(folder)
    from_array = load_video(frames)
    assert np.array_equal(from_folder.frames, frames) and np.array_equal(from_array.frames, frames)
    import imageio.v2 as imageio

    mp4 = tmp_path / "clip.mp4"
    imageio.mimwrite(mp4, frames, fps=10, macro_block_size=1)
    from_file = load_video(mp4)
    assert from_file.frames.shape == frames.shape and abs(from_file.fps - 10) < 0.5
    # a lossy codec blurs the noisy background, but every frame's red square is where it was drawn
    for decoded, mask in zip(from_file.frames, square_video[1]):
        inside = decoded[mask].astype(float).mean(axis=0)
        assert np.abs(inside - (220, 60, 60)).max() < 40


def test_video_limits(tmp_path, square_video):
    frames, _ = square_video
    with pytest.raises(VideoError, match="stride=2"):
        load_video(frames, max_frames=5)
    assert load_video(frames, max_frames=5, truncate=True).num_frames == 5
    sub = load_video(frames, stride=2)
    assert sub.num_frames == 5 and "every 2th" in sub.notes[0]
    small = load_video(frames, max_side=64)
    assert max(small.height, small.width) == 64


def test_bad_video_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no JPEG/PNG frames"):
        load_video(tmp_path / "empty")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(VideoError, match="broken.mp4"):
        load_video(bad)
    with pytest.raises(VideoError, match="does not exist"):
        load_video(tmp_path / "missing.mp4")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(VideoError, match="unsupported file type"):
        load_video(tmp_path / "notes.txt")


def test_bad_session_inputs_leave_the_session_usable(predictor, square_video):
    frames, masks = square_video
    s = LitSession(predictor, frames, LitConfig(mode="lit-ft"))
    with pytest.raises(RuntimeError, match="prompt an object"):
        next(s.propagate())
    with pytest.raises(ValueError, match="outside the 128x96 frame"):
        s.prompt(0, 1, points=[[500, 10]], labels=[1])
    with pytest.raises(ValueError, match="mask has shape"):
        s.prompt(0, 1, mask=np.ones((10, 10), bool))
    with pytest.raises(IndexError, match="frames 0..9"):
        s.prompt(10, 1, mask=masks[0])
    s.prompt(0, 1, mask=masks[0])
    with pytest.raises(KeyError, match="unknown object id 5"):
        s.correct(0, 5, mask=masks[0])
    with pytest.raises(ValueError, match="has not been tracked"):
        s.correct(4, 1, mask=masks[4])
    with pytest.raises(ValueError, match="no suggestion"):
        s.accept(0, 1)
    s.propagate_all()
    with pytest.raises(ValueError, match="labels must be 1"):
        s.correct(4, 1, points=[[10, 10]], labels=[3])
    with pytest.raises(ValueError, match="x0 < x1"):
        s.prompt(2, 2, box=[50, 50, 10, 10])
    event = s.correct(4, 1, mask=masks[4])  # still works after all of the above
    assert event.suggestion_iou_after >= 0.9
    assert LitConfig  # config errors too:
    with pytest.raises(ValueError, match="mode='lora'"):
        LitConfig(mode="lora")
    with pytest.raises(ValueError, match="lora_rank must be > 0"):
        LitConfig(lora_rank=0)
