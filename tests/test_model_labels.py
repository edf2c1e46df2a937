"""Every output that names a model says what it is: SAM2.1's weights, litdemo's micro model
("micro: trained on litdemo's synthetic videos, not SAM2.1") or random weights ("untrained").

Checked where people read results: the benchmark's table and plot titles, histories and
simulated-user runs, the app's figures, status line and simulation summary.
"""
from dataclasses import replace

import pytest

from litdemo import benchmark
from litdemo.app import AppConfig
from litdemo.app import handlers as h
from litdemo.app import render
from litdemo.app.samples import SYNTHETIC
from litdemo.app.state import AppSession, ModelCache, ModelChoice
from litdemo.config import LitConfig
from litdemo.datasets import make_procedural_video
from litdemo.models import MICRO_LABEL, MICRO_TAG, UNTRAINED_TAG, model_label, model_tag
from litdemo.plots import tagged
from litdemo.session import LitSession

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def test_labels_and_tags_of_every_kind_of_model():
    assert model_label("micro") == MICRO_LABEL == "micro: trained on litdemo's synthetic videos, not SAM2.1"
    assert model_tag("micro") == MICRO_TAG == "[micro: synthetic-trained, not SAM2.1]"
    assert (model_label("tiny"), model_tag("tiny")) == ("SAM2.1 tiny", "")
    assert model_label("tiny", untrained=True) == "SAM2.1 tiny architecture, UNTRAINED (random weights)"
    # random micro weights are neither SAM2.1 nor the trained micro model: the untrained words win
    assert model_label("micro", untrained=True) == "micro architecture, UNTRAINED (random weights)"
    assert model_tag("tiny", untrained=True) == model_tag("micro", untrained=True) == UNTRAINED_TAG == "[untrained model]"
    assert tagged("cumulative corrections", MICRO_TAG) == "cumulative corrections [micro: synthetic-trained, not SAM2.1]"
    assert tagged("cumulative corrections", "") == "cumulative corrections"


def test_predictors_histories_and_runs_carry_the_label(micro, predictor):
    assert (micro.model_label, micro.untrained) == (MICRO_LABEL, False)
    assert predictor.model_label == "SAM2.1 tiny architecture, UNTRAINED (random weights)" and predictor.untrained
    video = make_procedural_video("easy", 1, num_frames=2)
    session = LitSession(micro, video.frames, LitConfig(mode="sam2"))
    assert session.history.model == dict(name="micro", image_size=128, untrained=False, label=MICRO_LABEL)
    assert render.model_tag(micro) == MICRO_TAG and render.model_tag(predictor) == UNTRAINED_TAG


def test_benchmark_table_and_every_plot_title_name_the_micro_model(tmp_path, monkeypatch):
    titles = []

    def keep_title(fig, path):
        titles.append((path.name, fig._suptitle.get_text() if fig._suptitle else fig.axes[0].get_title()))
        fig.savefig(path)

    monkeypatch.setattr(benchmark, "_save", keep_title)
    result = benchmark.run_benchmark("procedural", model="micro", methods=("sam2", "lit-lora"), sequences=["hard-0"],
                                     out=tmp_path, dataset_options={"num_frames": 4}, device="cpu", threads=1,
                                     lit_overrides={"steps_first": 3, "steps_later": 2})
    table = result.to_markdown()
    assert f"{MICRO_LABEL} at 128 px" in table and MICRO_TAG in table and "SAM2.1 on real video" in table
    assert "UNTRAINED" not in table and "SAM2.1 micro" not in table
    assert titles and all(title.endswith(MICRO_TAG) for _, title in titles), titles
    assert {r.model["label"] for r in result.runs} == {MICRO_LABEL}


def test_app_status_figures_and_simulation_name_the_micro_model(tmp_path):
    cfg = AppConfig(image_size=128, pretrained=True, sample_frames=2, sample_height=64, sample_width=80,
                    train_steps_first=3, train_steps_later=2)
    app = AppSession(tmp_path / "root")
    try:
        h.open_sample(app, SYNTHETIC, ModelChoice(name="micro", device="cpu", mode="lit-lora"), cfg, ModelCache())
        status = h.status_markdown(app)
        assert f"**Model:** {MICRO_LABEL} @ 128 px on cpu" in status and "UNTRAINED" not in status
        view = h.simulate(app, replace(cfg, sample_frames=2))
        assert view["simulation_plot"].axes[0].get_title().endswith(MICRO_TAG)
        assert view["cumulative_plot"].axes[0].get_title().endswith(MICRO_TAG)
        assert view["simulation_info"].endswith(f" — {MICRO_LABEL}.") and "untrained" not in view["simulation_info"]
    finally:
        app.close()
