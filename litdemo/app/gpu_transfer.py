"""How a tab's session crosses ZeroGPU's process boundary: its tensors travel on the CPU.

On ZeroGPU the server process must never start CUDA: `spaces` emulates CUDA there and raises as soon
as anything reaches the real CUDA runtime. Yet the GPU worker hands the session back pickled, and for
another process torch pickles a CUDA tensor as a CUDA IPC handle, which the receiving process opens
with CUDA: a session with one tensor on the GPU (SAM2's memory, an adapter) would fail on its way back
to the server. So on ZeroGPU, `install()` changes how multiprocessing pickles tensors and random
generators, in both directions:

- worker -> server: a tensor on the GPU travels as a CPU copy that remembers its device; the server
  keeps it on the CPU (it never runs the model). A GPU generator travels as its state.
- server -> worker: such a CPU tensor (or generator state) goes back to its device in the worker.

Every other tensor travels as torch sends it (CPU shared memory). The price: every call copies the
session's GPU tensors to the CPU and back. What is not kept: two tensors that shared storage on the
GPU (a view and its base) come back as two copies; litdemo's sessions do not write through such views.
Not run on a real GPU here (no GPU in this project's CI); tests/test_zerogpu.py runs the whole app
through spaces' worker code with every tensor of the worker treated as a GPU tensor.
"""
from __future__ import annotations

from multiprocessing.reduction import ForkingPickler

import torch
from torch.multiprocessing.reductions import reduce_tensor

HOME = "_litdemo_home"  # attribute of a tensor parked on the server's CPU: the device it belongs on


def on_accelerator(tensor: torch.Tensor) -> bool:
    return tensor.device.type != "cpu"


def generator_on_accelerator(generator: torch.Generator) -> bool:
    return generator.device.type != "cpu"


class ParkedGenerator:
    """A GPU random generator's state, kept in the server until the session goes back to the worker."""

    def __init__(self, device: str, state: torch.Tensor):
        self.device, self.state = device, state

    def __reduce__(self):
        return _generator_in_worker, (self.device, _OnCpu(self.state))


def install() -> None:
    """Make multiprocessing pickle tensors and generators as described above (idempotent). Call it in
    the server before the GPU worker is forked, so both processes pickle the same way."""
    for cls in (torch.Tensor, torch.nn.Parameter):
        ForkingPickler.register(cls, _reduce_tensor)
    ForkingPickler.register(torch.Generator, _reduce_generator)


class _OnCpu:
    """A CPU tensor sent as torch sends it (shared memory), whatever the rules above say of it."""

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor

    def __reduce__(self):
        return reduce_tensor(self.tensor)


def _reduce_tensor(tensor: torch.Tensor):
    is_param = isinstance(tensor, torch.nn.Parameter)
    if on_accelerator(tensor):
        cpu = _OnCpu(tensor.detach().cpu())
        return _tensor_in_server, (cpu, str(tensor.device), tensor.requires_grad, is_param)
    home = tensor.__dict__.get(HOME)
    if home is not None:  # parked in the server: back to its device in the worker
        return _tensor_in_worker, (_OnCpu(tensor.detach()), home, tensor.requires_grad, is_param)
    return reduce_tensor(tensor)


def _tensor_in_server(cpu: torch.Tensor, device: str, requires_grad: bool, is_param: bool) -> torch.Tensor:
    tensor = torch.nn.Parameter(cpu, requires_grad) if is_param else cpu.requires_grad_(requires_grad)
    setattr(tensor, HOME, device)
    return tensor


def _tensor_in_worker(cpu: torch.Tensor, device: str, requires_grad: bool, is_param: bool) -> torch.Tensor:
    tensor = cpu.to(device)
    return torch.nn.Parameter(tensor, requires_grad) if is_param else tensor.requires_grad_(requires_grad)


def _reduce_generator(generator: torch.Generator):
    if generator_on_accelerator(generator):
        return ParkedGenerator, (str(generator.device), _OnCpu(generator.get_state()))
    return generator.__reduce__()


def _generator_in_worker(device: str, state: torch.Tensor) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.set_state(state)
    return generator
