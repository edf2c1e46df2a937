"""The tour's promise, checked on every shipped tour sample: on the micro model, the simulated user
needs fewer corrections with LIT-LoRA (the paper's method) than with SAM2 alone.

This runs the app's own Simulate handler with the app's defaults (the paper's training schedule),
so what the test sees is what a user pressing **Simulate** sees.
"""
import pytest

from litdemo.app import AppConfig
from litdemo.app import handlers as h
from litdemo.app.samples import TOUR
from litdemo.app.state import AppSession, ModelChoice


CASES = [pytest.param(s, id=f"{s.split}-{s.index}") for s in TOUR]


@pytest.mark.parametrize("sample", CASES)
def test_lit_lora_needs_fewer_corrections_than_sam2_alone(sample, models, tmp_path):
    app = AppSession(tmp_path / "root")
    try:
        h.open_sample(app, sample.name, ModelChoice(name="micro", device="cpu", mode="lit-lora"), AppConfig(), models)
        view = h.simulate(app, AppConfig())
        runs = app.simulation
        assert list(runs) == ["sam2", "lit-lora"]
        sam2, lit = runs["sam2"]["corrections"], runs["lit-lora"]["corrections"]
        print(f"{sample.split}-{sample.index}: SAM2 alone {sam2}, LIT-LoRA {lit} "
              f"(+{runs['lit-lora']['accepted']} accepted)")
        assert f"**sam2** needed {sam2} corrections, **lit-lora** needed {lit}" in view["simulation_info"]
        assert lit < sam2, f"{sample.name}: LIT-LoRA needed {lit} corrections, SAM2 alone {sam2}"
    finally:
        app.close()


def test_every_tour_sample_shows_the_event_it_is_named_after():
    """The picking rule's first condition (samples.py): the event can be seen on at least 8 of 32 frames.
    tour-225 and tour-445 are the videos LIT-LoRA saved most on without that condition: their look-alike
    and occluder never come near the object, so the measure must say 0 there."""
    from litdemo.datasets.procedural import TOUR_EVENTS, tour_event_frames

    for sample in TOUR:
        named = {"appearance": "appearance", "lookalike": "look-alike", "occlusion": "occlusion"}
        assert named[TOUR_EVENTS[sample.index % 3]] in sample.name
        assert tour_event_frames(sample.index) >= 8, sample.name
    assert tour_event_frames(225) == 0 and tour_event_frames(445) == 0
