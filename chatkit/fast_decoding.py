"""chatkit's recommended path for fast batch-1 decoding: dtype, threads, prepacked bf16 weights, compile.

- `decoding_dtype()`: the dtype to load a model in for decoding on this machine, and why;
- `prepare_for_decoding(model)`: sets the CPU thread count and, on CPUs where oneDNN has fast bf16
  kernels, replaces each bf16 `nn.Linear` by one whose weight is prepacked once (`pack_linear_weights`);
  `decoding_plan(model)` says what it chose and why;
- `fast_generate_kwargs(model)`: extra `generate` keywords for this device (static cache +
  `torch.compile` on a GPU); `static_compile_kwargs()`: the same, allowed on a CPU too.

Measured in benchmarks/RESULTS.md; notebook 05 compares each step with plain `generate`.

Example:
    >>> from chatkit.toy_models import random_llama
    >>> model = prepare_for_decoding(random_llama(64, 2, dtype="bf16", vocab_size=256), threads=1)
    >>> model.chatkit_packed_layers in (0, 15)   # 7 linears per layer × 2 layers + lm_head, where oneDNN packs
    True
    >>> fast_generate_kwargs(model)              # on a CPU: plain generate
    {}
    >>> decoding_plan(model)[0]
    'threads: 1'
"""

from .machine import set_threads
from .speed import model_device


def _packed_bf16_supported():
    import torch

    return bool(
        torch.backends.mkldnn.is_available() and getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()
    )


def _packed_linear_class():
    import torch

    class PackedLinear(torch.nn.Module):
        """A bf16 `nn.Linear` whose weight is prepacked once for oneDNN (CPU inference only).

        Stock PyTorch multiplies a bf16 matrix by a vector with a generic kernel that reaches about
        half the memory bandwidth; oneDNN's kernel, given its preferred weight layout once, reaches
        most of it. Same results (to bf16 rounding), no weight copy kept: inference only, not
        trainable, not saveable with `save_pretrained`.
        """

        def __init__(self, linear):
            super().__init__()
            self.in_features, self.out_features = linear.in_features, linear.out_features
            self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), 1)
            self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach(), requires_grad=False)

        def forward(self, x):
            return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, "none", [], "")

        def extra_repr(self):
            return f"in_features={self.in_features}, out_features={self.out_features}, prepacked bf16"

    return PackedLinear


def pack_linear_weights(model):
    """Replace the bf16 `nn.Linear` layers of a CPU model by oneDNN-prepacked ones, in place; return it.

    Only plain `torch.nn.Linear` layers in bf16 on the CPU are changed (quantized layers and other
    dtypes are left as they are). Returns the model; `model.chatkit_packed_layers` says how many.
    """
    import torch

    if not _packed_bf16_supported():
        model.chatkit_packed_layers = 0
        return model
    packed_class = _packed_linear_class()
    count = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if (
                type(child) is torch.nn.Linear
                and child.weight.dtype == torch.bfloat16
                and child.weight.device.type == "cpu"
            ):
                setattr(module, name, packed_class(child))
                count += 1
    model.chatkit_packed_layers = count
    return model


def decoding_dtype(device="cpu"):
    """`(dtype, reason)`: the dtype chatkit's recommended path loads a model in to decode on `device`.

    bf16 on a GPU and on CPUs where oneDNN has fast bf16 kernels (half the bytes of fp32 per token);
    fp32 on other CPUs, where bf16 has no fast kernels: there bf16 saves some decode time but reads
    the prompt several times slower (measured in benchmarks/RESULTS.md).
    """
    import torch

    if str(device).startswith("cuda"):
        return torch.bfloat16, "a GPU: bf16 reads half the bytes of fp32 per token, on fast kernels"
    if _packed_bf16_supported():
        return torch.bfloat16, (
            "this CPU has fast bf16 kernels (oneDNN): bf16 reads half the bytes of fp32 "
            "per token, and its prepacked kernels read big matrices near the memory bandwidth"
        )
    return torch.float32, (
        "this CPU has no fast bf16 kernels (oneDNN reports none): fp32 runs on PyTorch's "
        "own fast fp32 kernels, where bf16 reads prompts several times slower"
    )


def prepare_for_decoding(model, threads=None):
    """chatkit's recommended set-up for fast batch-1 decoding; returns the model (changed in place).

    - CPU: sets the thread count (`set_threads`), and for a bf16 model prepacks its linear layers for
      oneDNN (`pack_linear_weights`), the step that takes bf16 decoding from about a third to most of
      the machine's memory bandwidth. fp32 models keep PyTorch's own kernels (already near it).
      No `torch.compile`: see `fast_generate_kwargs`.
    - CUDA: nothing to change on the model; use `fast_generate_kwargs(model)` with `generate`.

    `decoding_plan(model)` lists what was chosen, and why.
    """
    import torch

    threads = set_threads(threads)
    device = model_device(model)
    dtype = next(model.parameters()).dtype
    plan = [f"threads: {threads}"]
    if device.type == "cpu":
        pack_linear_weights(model)
        if model.chatkit_packed_layers:
            plan.append(
                f"{model.chatkit_packed_layers} bf16 linear layers prepacked for oneDNN's bf16 kernels "
                "(PyTorch's stock bf16 matrix-vector kernel reads about half the bandwidth)"
            )
        elif dtype == torch.bfloat16:
            plan.append(
                "bf16 layers left on PyTorch's stock kernels: oneDNN has no fast bf16 kernels on this "
                "CPU; load the model in fast_decoding.decoding_dtype() (fp32 here) instead"
            )
        else:
            plan.append(f"{str(dtype).replace('torch.', '')} layers keep PyTorch's own kernels")
    best, why = decoding_dtype(device.type)
    plan.append(
        f"dtype: {str(dtype).replace('torch.', '')}"
        + (
            f" (the recommended one here: {why})"
            if dtype == best
            else f" (recommended here: {str(best).replace('torch.', '')}: {why})"
        )
    )
    plan.append(
        "generate: static cache + torch.compile of the whole forward (fullgraph, CUDA graphs): eager "
        "decoding on a GPU is bound by Python and kernel launches, not bandwidth (benchmarks/RESULTS.md)"
        if device.type == "cuda"
        else "generate: dynamic cache, no torch.compile (on a CPU compiling takes 22-26 s (benchmarks/RESULTS.md) and gains little "
        "over this path: benchmarks/RESULTS.md)"
    )
    model.chatkit_decoding_plan = plan
    return model


def decoding_plan(model):
    """What `prepare_for_decoding` chose for `model` on this machine, and why: a list of lines."""
    plan = getattr(model, "chatkit_decoding_plan", None)
    if plan is None:
        raise ValueError(
            "this model has not been through fast_decoding.prepare_for_decoding(model) yet: "
            "call that first, then ask for its plan."
        )
    return list(plan)


def fast_generate_kwargs(model):
    """Extra `generate` keywords for chatkit's recommended path on this model's device.

    GPU: a static KV cache plus `torch.compile` of the whole forward pass as one graph
    (`fullgraph=True`, mode "reduce-overhead": replayed as a CUDA graph), which removes the Python and
    kernel-launch overhead that leaves an eager model far below the memory bandwidth even at 8B
    parameters. CPU: none: compiling costs 22-26 s (benchmarks/RESULTS.md) and gains little over `prepare_for_decoding`'s path
    in chatkit's measurements (benchmarks/peer.py and benchmarks/decode.py --compile; figures in
    benchmarks/RESULTS.md).
    """
    if model_device(model).type == "cuda":
        return static_compile_kwargs(fullgraph=True)
    return {}


def static_compile_kwargs(compile_on_cpu=False, fullgraph=False):
    """`generate` keywords for a static KV cache + torch.compile; `compile_on_cpu=True` allows it on a CPU.

    transformers compiles automatically only on accelerators; on a CPU its CompileConfig needs the
    private flag `_compile_all_devices`. `fullgraph=True` makes any graph break an error instead of
    a silent fall-back to Python between compiled pieces.
    """
    from transformers import CompileConfig

    config = CompileConfig(fullgraph=fullgraph, dynamic=False)
    if compile_on_cpu:
        config._compile_all_devices = True
    return {"cache_implementation": "static", "compile_config": config}


def eager_kwargs():
    """`generate` keywords that keep decoding eager: on an accelerator, transformers compiles the
    forward pass by itself whenever it is given a static cache, unless told not to."""
    return {"disable_compile": True}
