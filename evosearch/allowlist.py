"""The attribute names a program may use: the public math of the modules it may import.

Why an allow-list: a deny-list of dangerous attributes loses to the next spelling (``gi_frame``,
``tb_frame.f_back``, ``grad_fn.next_functions``, ``torch.ops.load_library``...). A rule or a
policy is array math, so the names it needs are those of the tensor and array APIs, and the
check accepts exactly those: public names of the allowed modules that are not themselves
modules, the methods of tensors, arrays and plain containers, and the fields of the batch.
From that set the names that reach files, processes, compiled code or an object's internals
are taken out again, because those modules export them too.

The list is computed from the installed torch and numpy, so a newer torch's new functions are
usable without a change here. It is the first, readable layer; the process a rule runs in is
what holds (see docs/security.md).
"""

from __future__ import annotations

import builtins
import functools
import importlib
import math
import types
from collections.abc import Callable

#: The fields a rule's batch has (``b.logp``) and the names kinds' programs declare.
PROGRAM_NAMES = frozenset({"logp", "old_logp", "adv", "ret", "value", "old_value", "entropy", "progress"})

#: Reach files, processes, compiled or foreign code, global state, or the autograd graph and
#: storage behind a tensor (from which the parameters of whoever computed it can be found).
DENIED = frozenset({
    # files and serialisation
    "save", "load", "from_file", "fromfile", "tofile", "memmap", "savez", "savez_compressed", "savetxt",
    "loadtxt", "genfromtxt", "fromregex", "DataSource", "dump", "dumps", "open_memmap", "hub", "package",
    # compiled code, foreign code, operator registries
    "compile", "jit", "ops", "library", "classes", "export", "fx", "load_library", "ctypeslib", "cpp_extension",
    "utils", "backends", "cuda", "mps", "xpu", "distributed", "multiprocessing", "profiler", "testing", "overrides",
    "set_default_device", "set_default_dtype", "set_default_tensor_type", "set_printoptions", "set_flush_denormal",
    "use_deterministic_algorithms", "set_num_threads", "set_num_interop_threads", "manual_seed", "seed",
    "set_rng_state", "get_rng_state", "initial_seed", "random", "autograd", "func", "vmap",
    # an object's internals and the graph behind a tensor
    "grad_fn", "next_functions", "data", "grad", "storage", "untyped_storage", "storage_offset", "set_",
    "register_hook", "register_post_accumulate_grad_hook", "retain_grad", "retains_grad", "requires_grad_",
    "data_ptr", "share_memory_", "is_shared", "pin_memory", "apply_", "map_", "map2_", "new_tensor",
    "resize_", "as_strided", "as_strided_", "record_stream", "ctypes", "base", "flags", "tostring", "tobytes",
    "setflags", "getfield", "setfield", "view_as_real", "view_as_complex",
    "os", "sys", "subprocess", "importlib", "builtins", "system", "popen", "func_globals",
})
#: Attribute prefixes of frames, generators, coroutines and code objects: introspection, never math.
DENIED_PREFIXES = ("gi_", "f_", "tb_", "cr_", "co_", "ag_", "func_", "im_")

#: Modules whose public names count, per import name a program may use.
_MODULE_SOURCES = {
    "torch": ("torch", "torch.nn.functional"),
    "torch.nn": ("torch.nn",),
    "torch.nn.functional": ("torch.nn.functional",),
    "numpy": ("numpy",),
    "math": ("math",),
    "functools": (),  # partial and reduce only (below): the rest wraps or caches functions
}
_FUNCTOOLS = frozenset({"partial", "reduce"})
_CONTAINERS = (list, dict, tuple, str, int, float, set, frozenset, complex, bool)


def _public(obj: object) -> set[str]:
    names = set()
    for name in dir(obj):
        if name.startswith("_"):
            continue
        try:
            value = getattr(obj, name)
        except Exception:  # noqa: BLE001 - a lazy attribute that fails to load is not usable anyway
            continue
        if not isinstance(value, types.ModuleType):
            names.add(name)
    return names


@functools.cache
def allowed_attributes(modules: frozenset[str]) -> frozenset[str]:
    """Every attribute name a program importing ``modules`` may use (computed once per set)."""
    names: set[str] = set(PROGRAM_NAMES)
    for container in _CONTAINERS:
        names |= _public(container)
    for module in modules:
        for source in _MODULE_SOURCES.get(module, ()):
            names |= _public(importlib.import_module(source))
        if module == "functools":
            names |= _FUNCTOOLS
    if "torch" in modules:
        import torch

        names |= _public(torch.Tensor) | _public(torch.finfo(torch.float32)) | {"finfo", "iinfo"}
    if "numpy" in modules:
        import numpy

        names |= _public(numpy.ndarray) | _public(numpy.dtype("float64")) | _public(numpy.finfo(float))
    if "math" in modules:
        names |= _public(math)
    return frozenset(n for n in names if n not in DENIED and not n.startswith(DENIED_PREFIXES))


def attribute_verdict(name: str, modules: frozenset[str]) -> str:
    """Why ``name`` may not be used as an attribute, or ``""`` if it may."""
    if name.startswith("_"):
        return f"private or dunder attribute {name!r} is not allowed"
    if name in DENIED or name.startswith(DENIED_PREFIXES):
        return (f"attribute {name!r} reaches files, processes, compiled code or an object's internals "
                "(frames, the autograd graph, storage): not allowed")
    if name not in allowed_attributes(modules):
        return (f"attribute {name!r} is not part of the tensor or array math a program may use "
                f"(the public functions of {', '.join(sorted(modules))}, tensor and array methods, the batch fields)")
    return ""


#: The builtins a program's module sees: arithmetic, containers, iteration. No ``getattr``, ``open``,
#: ``type``, ``vars``, ``exec``: those are the usual first step out of the data a program is given.
SAFE_BUILTINS = frozenset({
    "abs", "all", "any", "bool", "bytearray", "bytes", "callable", "complex", "dict", "divmod", "enumerate",
    "filter", "float", "frozenset", "int", "isinstance", "iter", "len", "list", "map", "max", "min", "next", "pow",
    "print", "range", "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple", "zip",
    "ArithmeticError", "AssertionError", "Exception", "IndexError", "KeyError", "LookupError", "MemoryError",
    "NotImplementedError", "OverflowError", "RuntimeError", "StopIteration", "TypeError", "ValueError",
    "ZeroDivisionError", "__build_class__",
})


def restricted_import(modules: frozenset[str]) -> Callable[..., types.ModuleType]:
    """An ``__import__`` that returns the allowed modules only, and from them no module or private name."""

    roots = {m.split(".")[0] for m in modules}

    def _import(name: str, globals=None, locals=None, fromlist=(), level: int = 0):  # noqa: A002 - its signature
        # Submodules of an allowed package pass: numpy and torch import their own lazily, through
        # the builtins of the frame that triggered it (``obs.clip`` loads numpy._core._methods).
        # Which names a program's own ``import`` may use is the static check's to say.
        if level or name.split(".")[0] not in roots:
            raise ImportError(f"a program may import only {', '.join(sorted(modules))} (not {name!r})")
        module = builtins.__import__(name, globals, locals, fromlist, level)
        for attr in fromlist or ():
            if attr != "__doc__" and (attr.startswith("_") or isinstance(getattr(module, attr, None),
                                                                         types.ModuleType)):
                raise ImportError(f"a program may not import {attr!r} from {name!r}")
        return module

    return _import


def minimal_builtins(modules: frozenset[str]) -> dict:
    """A fresh builtins namespace for one program's module, importing from ``modules`` only."""
    names = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
    names["__import__"] = restricted_import(modules)
    return names
