"""litdemo.tour: the notebooks' one switch between the offline micro model and real weights."""
import os

import pytest
import torch

from litdemo.app.samples import TOUR
from litdemo.datasets.procedural import TOUR_EVENTS
from litdemo.models import MICRO_LABEL, PACKAGE_DIR, WeightsUnavailableError, model_spec
from litdemo.tour import OFFLINE_INDEX, OFFLINE_SPLIT, Tour, setup, tour_video


@pytest.fixture
def hub_reachable(monkeypatch):
    """HF_HUB_OFFLINE unset, so a test can see whether setup sets it."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def test_offline_tour_is_the_shipped_micro_model_with_lit_lora_on_a_tour_video(monkeypatch, hub_reachable,
                                                                                         one_torch_thread):
    monkeypatch.delenv("LITDEMO_PRETRAINED", raising=False)
    tour = setup(num_frames=6, device="cpu")  # pretrained=None: the switch is read from the environment
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert not tour.pretrained and tour.mode == "lit-lora"  # the paper's method, no longer LIT-FT
    p = tour.predictor
    assert p.model_name == "micro" and not p.untrained and p.image_size == 128 and p.model_label == MICRO_LABEL
    shipped = torch.load(PACKAGE_DIR / model_spec("micro").filename, map_location="cpu", weights_only=True)["model"]
    assert all(torch.equal(v, shipped[k]) for k, v in p.state_dict().items())  # the shipped weights, not random
    assert tour.sample.name == "tour-263" and OFFLINE_INDEX == 263 and TOUR_EVENTS[OFFLINE_INDEX % 3] == "appearance"
    assert (OFFLINE_SPLIT, OFFLINE_INDEX) == (TOUR[0].split, TOUR[0].index)  # the app's first tour sample
    assert (tour.sample.num_frames, tour.sample.height, tour.sample.width) == (6, 128, 128)
    assert tour.obj_id == 1 and len(tour.sample.gt[tour.obj_id]) == 6
    assert tour.label == MICRO_LABEL == "micro: trained on litdemo's synthetic videos, not SAM2.1"
    assert tour.tag == "[micro: synthetic-trained, not SAM2.1]"
    assert tour.summary() == ("micro: trained on litdemo's synthetic videos, not SAM2.1, 128 px on cpu; "
                              "LIT mode 'lit-lora'; video tour-263: 6 frames of 128x128")


def test_the_switch_in_the_environment_asks_for_weights_and_a_missing_file_says_so(monkeypatch, tmp_path,
                                                                                      hub_reachable):
    monkeypatch.setenv("LITDEMO_PRETRAINED", "1")
    monkeypatch.setenv("LITDEMO_SAM2_CHECKPOINT", str(tmp_path / "sam2.1_hiera_tiny.pt"))
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        setup(device="cpu")
    assert "HF_HUB_OFFLINE" not in os.environ  # with weights asked for, the hub stays reachable


def test_pretrained_without_reachable_weights_gives_the_clear_error(monkeypatch):
    import huggingface_hub

    def no_network(**_):
        raise ConnectionError("no network here")

    monkeypatch.delenv("LITDEMO_SAM2_CHECKPOINT", raising=False)
    monkeypatch.delenv("LITDEMO_CHECKPOINT_DIR", raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    with pytest.raises(WeightsUnavailableError, match="load_sam2\\('micro'\\)"):
        setup(pretrained=True, device="cpu")


def test_pretrained_tour_video_is_davis_bmx_trees_when_davis_is_there(monkeypatch, davis_root):
    monkeypatch.setenv("LITDEMO_DAVIS_ROOT", str(davis_root))
    sample = tour_video(pretrained=True)
    assert sample.name == "bmx-trees" and sample.num_frames == 30
    assert 1 in sample.gt and sample.gt[1][0].shape == sample.frames.shape[1:3]


def test_pretrained_tour_video_without_davis_is_a_larger_synthetic_video(monkeypatch):
    monkeypatch.delenv("LITDEMO_DAVIS_ROOT", raising=False)
    sample = tour_video(pretrained=True, num_frames=6)  # num_frames is the offline length only
    assert (sample.num_frames, sample.height, sample.width) == (30, 240, 320)


def test_a_pretrained_tour_carries_no_warning_label():
    tour = Tour(predictor=None, sample=None, mode="lit-lora", obj_id=1, pretrained=True, device="cpu")
    assert tour.label == "" and tour.tag == ""


def test_the_offline_tour_video_is_procedural_and_longer_on_request():
    sample = tour_video(pretrained=False, num_frames=32)
    assert sample.name == "tour-263" and sample.num_frames == 32 and set(sample.gt) == {1}
