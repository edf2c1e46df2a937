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
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import centre, running_app
from litdemo.app import AppConfig
from litdemo.app import gpu_transfer
from litdemo.app import handlers as h
from litdemo.app.layout import DeviceCalls
from litdemo.app.samples import TOUR
from litdemo.app.state import AppSession, ModelCache, ModelChoice
from litdemo.predictor import FEATURE_CACHE_KEY

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_app_load import ACTIONS, Script, Student  # noqa: E402 - the load test's student: one scripted tab

CFG = AppConfig(default_model="micro", concurrency_limit=1)  # as the load test serves it
MICRO = ModelChoice(name="micro", device="cpu", mode="lit-lora")


class ZeroGPU:
    """ZeroGPU as `spaces` sees it on a Space, with a stand-in scheduler that always grants the GPU."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.workers = []  # the processes spaces forked

    def switch_on(self, every_tensor_on_gpu: bool = False) -> None:
        """`every_tensor_on_gpu`: in the forked workers, every tensor and random generator counts as a
        GPU one (there is no GPU here), so each one the session holds crosses the boundary the way a
        CUDA tensor does on a Space (gpu_transfer.py); the sessions that reach the server are recorded so
        the test can check that none of their tensors arrived the way torch sends them."""
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
        # what install() registers stays with this test (ForkingPickler's table is process-wide)
        patch(ForkingPickler, "_extra_reducers", dict(ForkingPickler._extra_reducers))
        if every_tensor_on_gpu:
            server = os.getpid()
            patch(gpu_transfer, "on_accelerator", lambda tensor: os.getpid() != server)
            patch(gpu_transfer, "generator_on_accelerator", lambda generator: os.getpid() != server)
            self.arrived = []  # the sessions as they came back from a worker, before the tab adopts them
            adopt = AppSession.adopt

            def recorded(app, other):
                self.arrived.append(other)
                adopt(app, other)

            patch(AppSession, "adopt", recorded)


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


def unparked(obj) -> tuple[int, int, int, int]:
    """(tensors, of which not parked by gpu_transfer, raw random generators, parked ones) that pickling `obj` meets."""
    seen = {"tensors": 0, "unparked": 0, "generators": 0, "parked generators": 0}

    class Spy(pickle.Pickler):
        def reducer_override(self, value):
            if isinstance(value, torch.Tensor):
                seen["tensors"] += 1
                seen["unparked"] += gpu_transfer.HOME not in value.__dict__
                return int, ()  # not looked into (a Parameter would show its .data, a second tensor)
            elif isinstance(value, torch.Generator):
                seen["generators"] += 1
            elif isinstance(value, gpu_transfer.ParkedGenerator):
                seen["parked generators"] += 1
                return int, ()  # its state is a CPU byte tensor by design: not looked into
            return NotImplemented

    Spy(io.BytesIO()).dump(obj)
    return seen["tensors"], seen["unparked"], seen["generators"], seen["parked generators"]


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
    assert len(app.lit.features) == app.video.num_frames and app.lit.state["cached_features"]
    assert len(back.lit.features) == 0 and back.lit.state["cached_features"] == {}  # caches stay behind
    assert back.lit.features is back.lit.state[FEATURE_CACHE_KEY]  # one cache, as before the trip
    assert back.lock is not app.lock
    with back.lock:  # a working lock of its own
        pass
    app.adopt(back)
    assert app.lit is back.lit and app.lock is not back.lock
    app.close()


SCRIPT = Script(sample=2, correct_frame=8)


@pytest.fixture(scope="module")
def alone():
    """The reference for both workflow tests: SCRIPT with every handler in the server's process."""
    with running_app(CFG) as (_, url):
        student = Student(url, 0, SCRIPT, call_timeout_s=300, think_s=0).run()
    assert not student.errors and student.export is not None
    # the load test's timeline: every action is stamped, in the script's order, each asked for after the last ended
    stamps = [(student.started[a], student.seconds[a]) for a in ACTIONS]
    assert all(later >= asked + took for (asked, took), (later, _) in zip(stamps, stamps[1:])), stamps
    return student


def test_the_whole_workflow_runs_in_zerogpus_forked_workers(zero_gpu, alone):
    zero_gpu.switch_on()
    device = DeviceCalls.make()
    assert hasattr(device.call, "zerogpu") and hasattr(device.steps, "zerogpu")  # spaces.GPU wrapped both
    with running_app(CFG) as (_, url):
        remote = Student(url, 1, SCRIPT, call_timeout_s=300, think_s=0).run()
    assert not remote.errors, remote.errors
    assert zero_gpu.workers and all(p.pid != os.getpid() for p in zero_gpu.workers)  # the model ran in forked workers
    # what the student did and exported is exactly what it did with everything in one process
    assert remote.export["events"] == alone.export["events"]
    assert remote.export["masks"] == alone.export["masks"]
    assert [e["kind"] for e in remote.export["events"]].count("accepted") == 1


def test_gpu_tensors_reach_the_server_on_its_cpu_and_go_back_to_their_device(monkeypatch):
    """gpu_transfer's rule, in one process: 'worker' is when tensors count as GPU tensors."""
    monkeypatch.setattr(ForkingPickler, "_extra_reducers", dict(ForkingPickler._extra_reducers))
    gpu_transfer.install()
    in_worker = [True]
    monkeypatch.setattr(gpu_transfer, "on_accelerator", lambda tensor: in_worker[0])
    monkeypatch.setattr(gpu_transfer, "generator_on_accelerator", lambda generator: in_worker[0])
    weight, stats, generator = torch.nn.Parameter(torch.randn(3, 3)), torch.randn(4), torch.Generator().manual_seed(7)
    sent = ForkingPickler.dumps({"weight": weight, "stats": stats, "generator": generator, "same": stats})

    in_worker[0] = False  # the server
    there = pickle.loads(sent)
    assert isinstance(there["weight"], torch.nn.Parameter) and there["weight"].requires_grad
    assert getattr(there["weight"], gpu_transfer.HOME) == "cpu" and getattr(there["stats"], gpu_transfer.HOME) == "cpu"
    assert isinstance(there["generator"], gpu_transfer.ParkedGenerator)  # no generator is made on the server
    assert there["same"] is there["stats"]  # one tensor stays one tensor
    assert torch.equal(there["weight"], weight) and torch.equal(there["stats"], stats)
    assert unparked(there) == (2, 0, 0, 1)

    back = pickle.loads(ForkingPickler.dumps(there))  # to the worker again
    assert isinstance(back["weight"], torch.nn.Parameter) and back["weight"].requires_grad
    assert gpu_transfer.HOME not in back["weight"].__dict__ and gpu_transfer.HOME not in back["stats"].__dict__
    assert torch.equal(back["weight"], weight) and torch.equal(back["stats"], stats)
    assert isinstance(back["generator"], torch.Generator)
    assert torch.equal(torch.rand(5, generator=back["generator"]), torch.rand(5, generator=generator))  # same stream


def test_sessions_holding_gpu_tensors_come_back_without_them_and_work_on(zero_gpu, alone):
    """On a Space the server must never open a CUDA tensor: here every tensor of the workers counts as one."""
    zero_gpu.switch_on(every_tensor_on_gpu=True)
    DeviceCalls.make()
    with running_app(CFG) as (_, url):
        remote = Student(url, 1, SCRIPT, call_timeout_s=300, think_s=0).run()
    assert not remote.errors, remote.errors
    assert zero_gpu.workers and zero_gpu.arrived
    after_correction = [s for s in zero_gpu.arrived if s.lit is not None and s.lit.learners]
    assert after_correction  # sessions came back with a trained adapter in them
    for session in zero_gpu.arrived:
        tensors, raw, generators, _ = unparked(session)
        assert raw == 0 and generators == 0  # every tensor parked on the server's CPU, no generator made there
    assert max(unparked(s)[0] for s in after_correction) > 100  # SAM2's memory and the adapter's weights among them
    assert max(unparked(s)[3] for s in after_correction) > 0  # the adapter's dropout generators, as their state
    assert remote.export["events"] == alone.export["events"]  # and the session works on exactly as before
    assert remote.export["masks"] == alone.export["masks"]


def test_off_zerogpu_the_model_side_runs_in_the_servers_process_and_long_jobs_reserve_more(monkeypatch):
    from litdemo.app import layout

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert layout.DeviceCalls.make() == layout.IN_PROCESS  # the plain functions: nothing forks, nothing pickles
    seconds = {fn.__name__: layout._gpu_seconds(None, fn, (), {}) for fn in (h.simulate, h.import_history,
                                                                             h.propagate, h.click)}
    assert seconds == {"simulate": 120, "import_history": 120, "propagate": 60, "click": 60}
