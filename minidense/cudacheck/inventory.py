"""Every CUDA kernel defined in minidense, found without a list of names.

Two ways, so that neither form of definition escapes:

* the source: every function decorated with ``cuda.jit`` (bare or called, without
  ``device=True``), at any depth, e.g. ``_make_map.<locals>.map_kernel`` inside a factory;
* the imported modules: every module-level kernel object, whatever made it (``cuda.jit(fn)``
  called directly, a helper decorator).

A kernel is named ``(module, qualname)``, as in a launch record (refs.py).
"""

import ast
import importlib
import os
import pkgutil

from numba.cuda.dispatcher import CUDADispatcher
from numba.cuda.simulator.kernel import FakeCUDAKernel

import minidense

__all__ = ["defined_kernels", "is_kernel", "is_device_function", "kernel_key"]


def _is_cuda_jit(node):
    """``cuda.jit`` / ``numba.cuda.jit``, bare or called, but not ``cuda.jit(device=True)``."""
    call = node if isinstance(node, ast.Call) else None
    func = call.func if call else node
    if not (isinstance(func, ast.Attribute) and func.attr == "jit"):
        return False
    owner = func.value
    owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
    if owner_name != "cuda":
        return False
    for kw in call.keywords if call else ():
        if kw.arg == "device" and not (isinstance(kw.value, ast.Constant) and not kw.value.value):
            return False
    return True


def _decorated_kernels(tree):
    """``{qualname: line}`` of the functions in ``tree`` decorated as CUDA kernels."""
    found = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                qualname = prefix + child.name
                if any(_is_cuda_jit(d) for d in child.decorator_list):
                    found[qualname] = min([d.lineno for d in child.decorator_list])
                visit(child, qualname + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def is_kernel(obj):
    """True for a kernel object, real (``CUDADispatcher``) or simulated, not a device function."""
    if isinstance(obj, FakeCUDAKernel):
        return not obj._device
    return isinstance(obj, CUDADispatcher) and not obj.targetoptions.get("device", False)


def is_device_function(obj):
    """True for a compiled-on-demand ``cuda.jit(device=True)`` function (not simulated)."""
    return isinstance(obj, CUDADispatcher) and bool(obj.targetoptions.get("device", False))


def _modules():
    root = os.path.dirname(minidense.__file__)
    yield "minidense", os.path.join(root, "__init__.py")
    for info in pkgutil.walk_packages([root], prefix="minidense."):
        path = os.path.join(root, *info.name.split(".")[1:])
        yield info.name, os.path.join(path, "__init__.py") if info.ispkg else path + ".py"


def defined_kernels():
    """``{(module, qualname): line}`` of every CUDA kernel defined in the package."""
    found = {}
    for name, path in _modules():
        with open(path, encoding="utf-8") as f:
            source = f.read()
        if "cuda" not in source:
            continue
        for qualname, line in _decorated_kernels(ast.parse(source)).items():
            found[(name, qualname)] = line
        module = importlib.import_module(name)
        for value in list(vars(module).values()):
            if is_kernel(value) and value.py_func.__module__ == name:
                fn = value.py_func
                found.setdefault((name, fn.__qualname__), fn.__code__.co_firstlineno)
    return found


def kernel_key(ref):
    """The ``(module, qualname)`` of a launch record's kernel."""
    return ref["module"], ref["qualname"]
