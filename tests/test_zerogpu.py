"""The app on Hugging Face ZeroGPU's runtime, without a GPU.

On a ZeroGPU Space, `spaces.GPU` runs each decorated call in a worker process forked from the
server: the arguments go there pickled, the result (each yielded value, for a generator) comes
back pickled. These tests run the app through the `spaces` package's own worker code (fork,
queues, pickling, worker reuse); only the GPU scheduler, an HTTP service that exists on a Space
alone, and the CUDA hand-over are replaced by stand-ins. A session changed in place in the worker
would be lost on the way back, and an unpicklable one would fail to travel: both fail here.
"""
import io
import os
import pickle
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import centre, running_app
from litdemo.app import AppConfig
from litdemo.app import handlers as h
from litdemo.app.layout import DeviceCalls
from litdemo.app.samples import TOUR
from litdemo.app.state import AppSession, ModelCache, ModelChoice

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_app_load import Script, Student  # noqa: E402 - the load test's student: one scripted tab

CFG = AppConfig(default_model="micro", concurrency_limit=1)  # as the load test serves it
MICRO = ModelChoice(name="micro", device="cpu", mode="lit-lora")


class ZeroGPU:
    """ZeroGPU as `spaces` sees it on a Space, with a stand-in scheduler that always grants the GPU."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.workers = []  # the processes spaces forked

    def switch_on(self) -> None:
        from spaces.config import Config
        from spaces.zero import client, wrappers
        from spaces.zero import torch as zero_torch

        patch = self.monkeypatch.setattr
        self.monkeypatch.setenv("SPACES_ZERO_GPU", "true")
        patch(Config, "zero_gpu", True)
        granted = SimpleNamespace(allowToken="stand-in", nvidiaIndex=0, nvidiaUUID="stand-in", idle=True)
        patch(client, "schedule", lambda *args, **kwargs: granted)
        patch(client, "allow", lambda token: None)
        patch(client, "release", lambda token, **kwargs: None)
        patch(client, "get_duration_seconds", lambda duration, size: 600)
        for name in ("unpatch", "init", "move", "enter_mode"):  # the CUDA hand-over: no GPU, nothing to hand over
            patch(zero_torch, name, lambda *args, **kwargs: None)
        patch(zero_torch, "size", lambda: 0)
        start, workers = wrappers.Worker.__init__, self.workers

        def counted(worker, *args, **kwargs):
            start(worker, *args, **kwargs)
            workers.append(worker.process)

        patch(wrappers.Worker, "__init__", counted)


@pytest.fixture
def zero_gpu(monkeypatch):
    runtime = ZeroGPU(monkeypatch)
    yield runtime
    for process in runtime.workers:  # daemons blocked on their queue: end them with the test
        process.kill()
        process.join(timeout=10)


def pickled_tensors_of(model, obj) -> tuple[bytes, int]:
    """`obj` pickled, and how many of `model`'s parameter tensors went into it."""
    params, found = {p.data_ptr() for p in model.parameters()}, []

    class Spy(pickle.Pickler):
        def reducer_override(self, value):
            if isinstance(value, torch.Tensor) and value.data_ptr() in params:
                found.append(value)
            return NotImplemented

    out = io.BytesIO()
    Spy(out).dump(obj)
    return out.getvalue(), len(found)


def test_a_session_travels_pickled_without_its_models_weights(tmp_path):
    app = AppSession(tmp_path / "root")
    h.open_sample(app, TOUR[0].name, MICRO, CFG, ModelCache())
    gt = app.sample.gt[1]
    h.click(app, *centre(gt[0]))
    list(h.propagate(app, stream_every_s=0))
    h.goto(app, 8)
    h.click(app, *centre(gt[8]))
    list(h.correct_and_continue(app))  # a learner exists now, with an adapter over the model's decoder
    model = app.lit.predictor
    _, by_value = pickled_tensors_of(model, pickle.loads(pickle.dumps(model.sam_mask_decoder)))
    assert by_value == 0  # (the spy's control: a copy of the decoder shares no tensor with the model)
    _, by_value = pickled_tensors_of(model, model.sam_mask_decoder)
    assert by_value > 10  # ... and the model's own decoder is seen when it is pickled

    data, model_tensors = pickled_tensors_of(model, app)
    assert model_tensors == 0  # the model's weights stayed home: the session names its model
    back = pickle.loads(data)
    assert back.lit.predictor is model  # this process's copy, found by name
    assert back.lit.learners[1].base_decoder is model.sam_mask_decoder  # re-attached, not a copy
    assert all(np.array_equal(back.lit.mask(t, 1), app.lit.mask(t, 1)) for t in range(app.video.num_frames))
    assert back.lit.history.to_dict() == app.lit.history.to_dict()
    assert back.lock is not app.lock
    with back.lock:  # a working lock of its own
        pass
    app.adopt(back)
    assert app.lit is back.lit and app.lock is not back.lock
    app.close()


def test_the_whole_workflow_runs_in_zerogpus_forked_workers(zero_gpu):
    script = Script(sample=2, correct_frame=8)
    with running_app(CFG) as (_, url):  # the reference: every handler in the server's process
        alone = Student(url, 0, script, call_timeout_s=300, think_s=0).run()
    assert not alone.errors and alone.export is not None

    zero_gpu.switch_on()
    device = DeviceCalls.make()
    assert hasattr(device.call, "zerogpu") and hasattr(device.steps, "zerogpu")  # spaces.GPU wrapped both
    with running_app(CFG) as (_, url):
        remote = Student(url, 1, script, call_timeout_s=300, think_s=0).run()
    assert not remote.errors, remote.errors
    assert zero_gpu.workers and all(p.pid != os.getpid() for p in zero_gpu.workers)  # the model ran in forked workers
    # what the student did and exported is exactly what it did with everything in one process
    assert remote.export["events"] == alone.export["events"]
    assert remote.export["masks"] == alone.export["masks"]
    assert [e["kind"] for e in remote.export["events"]].count("accepted") == 1


def test_off_zerogpu_the_model_side_runs_in_the_servers_process_and_long_jobs_reserve_more(monkeypatch):
    from litdemo.app import layout

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert layout.DeviceCalls.make() == layout.IN_PROCESS  # the plain functions: nothing forks, nothing pickles
    seconds = {fn.__name__: layout._gpu_seconds(None, fn, (), {}) for fn in (h.simulate, h.import_history,
                                                                             h.propagate, h.click)}
    assert seconds == {"simulate": 120, "import_history": 120, "propagate": 60, "click": 60}
