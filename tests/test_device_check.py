"""benchmarks/device_check.py checks ZeroGPU's boundary with real CUDA tensors where a GPU is lent.
Here it runs dry (this process's tensors counted as GPU ones, the server a real second process with
CUDA hidden), so the script a GPU session depends on cannot rot, and its verdict can fail."""
import sys
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import device_check  # noqa: E402


@pytest.fixture(autouse=True)
def own_pickling_rules(monkeypatch):
    # the script registers gpu_transfer's reducers in ForkingPickler's process-wide table: keep them here
    monkeypatch.setattr(ForkingPickler, "_extra_reducers", dict(ForkingPickler._extra_reducers))


def test_a_session_that_crosses_to_a_process_without_the_gpu_after_every_step_ends_as_one_that_never_did():
    result = device_check.run("cpu", frames=16)
    assert result["passed"], result
    assert [s.split()[0] for s in result["steps"]].count("correct") == 2  # a new adapter, then one with replay
    assert result["steps"] == result["steps_alone"] and result["same_events"]
    assert result["masks_compared"] == 16 and result["masks_exactly_equal"] == 16
    assert result["server_tensors_on_cuda"] == 0 and result["server_generators_made"] == 0
    assert result["server_parked_tensors_max"] > 100  # SAM2's memory and the adapter, each a parked CPU copy
    assert result["server_parked_generators_max"] > 0  # the adapter's dropout generators, as their state
    assert result["adapters_back_on"] == ["cpu"] and result["back_on_the_workers_model"]


def test_without_gpu_transfer_the_check_fails(monkeypatch):
    monkeypatch.setattr(device_check.gpu_transfer(), "install", lambda: None)
    result = device_check.run("cpu", frames=8)  # fewer frames than above: any crossing shows the failure
    assert not result["passed"]
    assert result["server_parked_tensors_max"] == 0  # every tensor went as torch sends it
