"""Megatron-Core on CPU with gloo: map the CUDA calls it hard-codes onto CPU equivalents.

Megatron-Core assumes CUDA throughout (device arguments, `.cuda()`, streams, events, synchronize, the
CUDA RNG, `param.type() == 'torch.cuda.FloatTensor'` assertions, reduce-scatter that gloo lacks).
`install()` makes those calls behave as on a single-stream CUDA device whose memory is host memory:
- a torch function mode rewrites CUDA (and bare integer) device arguments to CPU, makes `.cuda()` and
  `pin_memory()` identities and reports CPU tensors with their CUDA type names;
- `torch.cuda.*` functions Megatron calls get CPU stand-ins (the CUDA RNG becomes the CPU RNG, which
  keeps Megatron's RNG tracker semantics: each tracked state is a separate CPU generator state);
- `torch.distributed.reduce_scatter_tensor` falls back to all-reduce plus a slice under gloo, and
  all-to-all split sizes left in tensors (Megatron converts them only when on CUDA) become lists.
Only `megatron_mc.platform.activate()` imports this module, and only when CUDA is absent.
"""
from __future__ import annotations

import contextlib
import importlib
import types

import torch
import torch.distributed as dist
from torch.overrides import TorchFunctionMode

_CUDA_TYPE_NAMES = {
    torch.float32: "torch.cuda.FloatTensor",
    torch.float16: "torch.cuda.HalfTensor",
    torch.bfloat16: "torch.cuda.BFloat16Tensor",
}
_installed = False


def _names_cuda(device) -> bool:
    """On a machine without CUDA, any integer device index can only have meant a CUDA device."""
    if isinstance(device, int) and not isinstance(device, bool):
        return True
    if isinstance(device, str):
        return device.startswith("cuda")
    return isinstance(device, torch.device) and device.type == "cuda"


class _CudaOnCpu(TorchFunctionMode):
    def __torch_function__(self, func, types_, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.Tensor.backward:
            if "gradient" in kwargs:
                kwargs["grad_tensors"] = kwargs.pop("gradient")
            return _backward(self, args[0], *args[1:], **kwargs)
        if func is torch.autograd.backward:
            kwargs.pop("grad_variables", None)
            return _backward(self, *args, **kwargs)
        if func in (torch.Tensor.cuda, torch.Tensor.pin_memory):
            return args[0]
        if func is torch.Tensor.record_stream:
            return None
        if func is torch.Tensor.type and len(args) == 1 and not kwargs:
            return _CUDA_TYPE_NAMES.get(args[0].dtype) or func(*args)
        if _names_cuda(kwargs.get("device")):
            kwargs["device"] = "cpu"
        if kwargs.get("pin_memory"):
            kwargs["pin_memory"] = False
        if func is dist.all_to_all_single:
            # Megatron's MoE dispatcher turns split sizes into host lists only when they sit on CUDA.
            for key in ("output_split_sizes", "input_split_sizes"):
                if isinstance(kwargs.get(key), torch.Tensor):
                    kwargs[key] = kwargs[key].tolist()
        if func is torch.Tensor.to:
            args = tuple("cpu" if _names_cuda(a) else a for a in args)
        return func(*args, **kwargs)


def _backward(mode, tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """torch.autograd.backward with `mode` active while the engine runs. A mode is off while its own
    handler runs, and backward runs Megatron's Python autograd functions, which allocate on "cuda" too;
    re-entering the mode around torch.autograd.backward would intercept it again, so this calls the
    engine the way torch.autograd.backward does."""
    from torch.autograd import _make_grads, _tensor_or_tensors_to_tuple
    from torch.autograd.graph import _engine_run_backward

    tensors = (tensors,) if isinstance(tensors, torch.Tensor) else tuple(tensors)
    inputs = () if inputs is None else ((inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs))
    with mode:
        grads = _make_grads(tensors, _tensor_or_tensors_to_tuple(grad_tensors, len(tensors)), is_grads_batched=False)
        keep_graph = create_graph if retain_graph is None else retain_graph
        _engine_run_backward(tensors, grads, keep_graph, create_graph, inputs, True, True)


class _Stream:
    """A CUDA stream stand-in: CPU kernels run in program order, so every wait is already satisfied."""

    def __init__(self, *args, **kwargs):
        pass

    def wait_stream(self, other):
        pass

    def wait_event(self, event):
        pass

    def record_event(self, event=None):
        return event or _Event()

    def synchronize(self):
        pass

    def query(self):
        return True


class _Event(_Stream):
    def record(self, stream=None):
        pass

    def wait(self, stream=None):
        pass

    def elapsed_time(self, other):
        return 0.0


class _DoneWork:
    def wait(self, *args, **kwargs):
        return True

    def is_completed(self):
        return True


def _reduce_scatter_by_all_reduce(original):
    def reduce_scatter_tensor(output, input, op=dist.ReduceOp.SUM, group=None, async_op=False):
        if dist.get_backend(group) != "gloo":
            return original(output, input, op=op, group=group, async_op=async_op)
        full = input.clone()
        # Straight to the process group, not dist.all_reduce: inside `_coalescing_manager` (Megatron's
        # gradient buckets) dist.all_reduce only records the op for the end of the context, and the
        # slice below would then copy this rank's un-reduced gradients.
        process_group = group or dist.group.WORLD
        options = dist.AllreduceOptions()
        options.reduceOp = op
        process_group.allreduce([full], options).wait()
        rank = dist.get_rank(group)
        output.copy_(full.view(-1)[rank * output.numel() : (rank + 1) * output.numel()].view_as(output))
        return _DoneWork() if async_op else None

    return reduce_scatter_tensor


def _patch_torch_cuda() -> None:
    cuda = torch.cuda
    cuda.current_device = lambda: 0
    cuda.set_device = lambda device: None
    cuda.synchronize = lambda device=None: None
    cuda.empty_cache = lambda: None
    cuda.get_rng_state = lambda device="cuda": torch.get_rng_state()
    cuda.set_rng_state = lambda state, device="cuda": torch.set_rng_state(state)
    # torch.manual_seed itself calls cuda.manual_seed_all: seed the CPU generator alone, without recursion.
    cuda.manual_seed = lambda seed: torch.default_generator.manual_seed(seed)
    cuda.manual_seed_all = lambda seed: None
    cuda.random.get_rng_state = cuda.get_rng_state
    cuda.random.set_rng_state = cuda.set_rng_state
    cuda.default_generators = (torch.default_generator,)
    cuda.Stream = _Stream
    cuda.Event = _Event
    cuda.current_stream = lambda device=None: _Stream()
    cuda.default_stream = lambda device=None: _Stream()
    cuda.stream = lambda stream=None: contextlib.nullcontext()
    cuda.set_stream = lambda stream: None
    cuda.memory_allocated = lambda device=None: 0
    cuda.max_memory_allocated = lambda device=None: 0
    cuda.nvtx = types.SimpleNamespace(
        range_push=lambda msg: None, range_pop=lambda: None, range=lambda *a, **k: contextlib.nullcontext()
    )


def _import_megatron_without_compiling() -> None:
    """Import Megatron-Core with `torch.compile` standing in as the identity. Megatron decorates its fused
    kernels with torch.compile at import (megatron/core/jit.py), which imports Dynamo and Inductor: about
    1.3 s of every rank's start here. Those kernels are off on CPU (models/fusions.py), so the decorated
    functions stay plain eager functions and nothing else changes."""
    compile_ = torch.compile
    torch.compile = lambda model=None, **kwargs: model if model is not None else (lambda fn: fn)
    try:
        importlib.import_module("megatron.core")
    finally:
        torch.compile = compile_


def _patch_megatron_rng() -> None:
    from megatron.core.tensor_parallel import random as mc_random

    mc_random._get_cuda_rng_state = lambda device="cuda", clone=False, graph_safe=False: (
        torch.get_rng_state().clone() if clone else torch.get_rng_state()
    )
    mc_random._set_cuda_rng_state = lambda new_state, device=-1, graph_safe=False: torch.set_rng_state(
        new_state
    )


def install() -> None:
    """Idempotent; must run before Megatron-Core builds models, optimizers or checkpoints."""
    global _installed
    if _installed:
        return
    _patch_torch_cuda()
    dist.reduce_scatter_tensor = _reduce_scatter_by_all_reduce(dist.reduce_scatter_tensor)
    _import_megatron_without_compiling()
    _patch_megatron_rng()
    _CudaOnCpu().__enter__()
    _installed = True
