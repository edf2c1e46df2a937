"""Two sessions tracking at the same time on one shared model (the app with concurrency_limit > 1).

The predictor keeps what a running call must remember (its object, its decoder) per thread; if it
kept them on the model, one thread's adapted decoder or object index would leak into the other's
frames. Each session's masks in the concurrent run must equal the same session run alone.
"""
import threading

import numpy as np

from litdemo.config import LitConfig
from litdemo.datasets.procedural import make_procedural_video
from litdemo.session import LitSession


def _adapted_session(model):
    """A LIT-LoRA session whose tracking uses its adapter (trained on one corrected frame)."""
    sample = make_procedural_video("hard", 4)
    obj = sorted(sample.gt)[0]
    lit = LitSession(model, sample.frames, LitConfig(mode="lit-lora", use_adapter_in_propagation=True,
                                                     steps_first=5, feature_cache_mb=0))
    lit.prompt(0, obj, mask=sample.gt[obj][0])
    lit.propagate_all()
    lit.correct(10, obj, mask=sample.gt[obj][10])
    return lit


def _plain_session(model):
    sample = make_procedural_video("easy", 0)
    obj = sorted(sample.gt)[0]
    lit = LitSession(model, sample.frames, LitConfig(mode="sam2", feature_cache_mb=0))
    lit.prompt(0, obj, mask=sample.gt[obj][0])
    return lit


def _track(lit, start):
    return {t: {o: m.copy() for o, m in masks.items()} for t, masks in lit.propagate(start_frame=start)}


def test_two_threads_on_one_model_track_as_they_do_alone(micro, one_torch_thread):
    adapted, plain = _adapted_session(micro), _plain_session(micro)
    assert adapted.learners, "the correction must have trained an adapter"
    alone = {"adapted": _track(adapted, 10), "plain": _track(plain, 0)}

    results, errors, barrier = {}, [], threading.Barrier(2)

    def run(name, lit, start):
        try:
            barrier.wait()
            for _ in range(3):  # several passes so the two threads' frames interleave
                results[name] = _track(lit, start)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=("adapted", adapted, 10)),
               threading.Thread(target=run, args=("plain", plain, 0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for name in alone:
        assert results[name].keys() == alone[name].keys()
        for t, masks in alone[name].items():
            for o, m in masks.items():
                assert np.array_equal(results[name][t][o], m), f"{name}: frame {t} differs from its solo run"
    # the adapter does change tracking, so a leak of it into the plain session would show
    assert micro._running is None
