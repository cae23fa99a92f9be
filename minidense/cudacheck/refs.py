"""Name a CUDA kernel and its argument types in plain data, and rebuild both in another process.

A launch is recorded under Numba's CUDA simulator, where a kernel is a Python function, and compiled
in a process without the simulator, where the same module holds the real ``cuda.jit`` dispatcher.
Between the two only JSON travels:

* a kernel is ``{"module", "qualname", "line", "closure"}``. A kernel defined at module level is
  found again by name; one built by a factory (``_make_map(op)`` returns ``map_kernel``) is its
  code object, found inside the factory's, plus its closure cells, each named by where it lives:
  a module attribute or an entry of a module-level dict (``_DEVICE_FNS["exp"]``), an importable
  object (``numpy.float32``), a Numba scalar type or a constant;
* an argument type is ``{"array": "float32", "ndim": 4, "layout": "C", "readonly": false}``,
  ``{"scalar": "int64"}`` or ``{"tuple": [...]}``.

Resolving in the compiling process gives that process's objects: module constants such as a
matmul's ``TILE`` take their real-GPU values there, not the simulator's.
"""

import ast
import importlib
import sys
import types

import numba
import numpy as np

__all__ = [
    "describe_kernel", "resolve_kernel", "kernel_name", "package_modules", "type_to_json",
    "type_from_json", "show_type", "RefError",
]  # fmt: skip

PACKAGE = "minidense"


class RefError(Exception):
    """A kernel or a type that cannot be named in plain data, or found again."""


# ---------------------------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------------------------


def package_modules():
    """The imported modules of the package."""
    return [m for name, m in list(sys.modules.items()) if name.split(".")[0] == PACKAGE and m]


def _locate(obj):
    """Where ``obj`` lives at module level in the package: ``(module, attr, key or None)``."""
    for module in package_modules():
        for attr, value in list(vars(module).items()):
            if value is obj:
                return module.__name__, attr, None
            if isinstance(value, dict):
                for key, item in list(value.items()):
                    if item is obj:
                        return module.__name__, attr, repr(key)
    return None


def _describe_cell(name, value):
    if isinstance(value, bool | int | float | str) or value is None:
        return {"name": name, "const": value}
    if isinstance(value, numba.types.Number | numba.types.Boolean):
        return {"name": name, "numba_type": str(np.dtype(numba.np.numpy_support.as_dtype(value)))}
    place = _locate(value)
    if place is not None:
        return {"name": name, "module": place[0], "attr": place[1], "key": place[2]}
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if module and qualname and "<locals>" not in qualname:
        try:
            found = _walk(importlib.import_module(module), qualname)
        except (ImportError, AttributeError):
            found = None
        if found is value:
            return {"name": name, "module": module, "attr": qualname, "key": None}
    raise RefError(f"closure variable {name!r} = {value!r} is not a module-level object")


def describe_kernel(fn):
    """Plain-data name of the Python function ``fn`` behind a kernel (see the module docstring)."""
    module = sys.modules.get(fn.__module__)
    if module is None or fn.__globals__ is not vars(module):
        raise RefError(f"kernel {fn.__qualname__}: its globals are not its module's")
    cells = fn.__closure__ or ()
    return {
        "module": fn.__module__,
        "qualname": fn.__qualname__,
        "line": fn.__code__.co_firstlineno,
        "closure": [
            _describe_cell(n, c.cell_contents)
            for n, c in zip(fn.__code__.co_freevars, cells, strict=True)
        ],
    }


def _cell_label(cell):
    if cell.get("key") is not None:
        return str(ast.literal_eval(cell["key"]))
    if "numba_type" in cell:
        return cell["numba_type"]
    return cell["attr"] if "attr" in cell else repr(cell["const"])


def kernel_name(ref):
    """``module:qualname`` of a kernel reference, with its closure, e.g. ``...map_kernel[op=exp]``."""
    short = ref["module"].removeprefix(PACKAGE + ".")
    name = f"{short}:{ref['qualname'].replace('.<locals>.', '.')}"
    if ref["closure"]:
        name += "[" + ", ".join(f"{c['name']}={_cell_label(c)}" for c in ref["closure"]) + "]"
    return name


def _walk(module, dotted):
    obj = module
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _python_function(obj):
    """The Python function behind a plain function or a (real or simulated) CUDA dispatcher."""
    fn = getattr(obj, "py_func", obj)
    if not isinstance(fn, types.FunctionType):
        raise RefError(f"{obj!r} is not a function or a CUDA dispatcher")
    return fn


def _nested_code(code, name):
    for const in code.co_consts:
        if isinstance(const, types.CodeType) and const.co_name == name:
            return const
    raise RefError(f"no function {name!r} inside {code.co_name!r}")


def _resolve_cell(cell):
    if "const" in cell:
        return cell["const"]
    if "numba_type" in cell:
        return numba.from_dtype(np.dtype(cell["numba_type"]))
    value = _walk(importlib.import_module(cell["module"]), cell["attr"])
    return value if cell["key"] is None else value[ast.literal_eval(cell["key"])]


def resolve_kernel(ref):
    """The Python function of the kernel named by ``ref``, with this process's globals."""
    try:
        module = importlib.import_module(ref["module"])
        outer, *inner = ref["qualname"].split(".<locals>.")
        fn = _python_function(_walk(module, outer))
        code = fn.__code__
        for name in inner:
            code = _nested_code(code, name)
        if code.co_firstlineno != ref["line"]:
            raise RefError(
                f"found at line {code.co_firstlineno}, recorded at line {ref['line']}: the source "
                "changed since the launches were recorded"
            )
        if not inner:
            return fn
        cells = tuple(types.CellType(_resolve_cell(c)) for c in ref["closure"])
        return types.FunctionType(code, fn.__globals__, code.co_name, None, cells)
    except (ImportError, AttributeError, KeyError, SyntaxError, ValueError) as e:
        raise RefError(f"cannot find kernel {kernel_name(ref)}: {e}") from e


# ---------------------------------------------------------------------------------------------
# Argument types
# ---------------------------------------------------------------------------------------------


def _dtype_name(nb_type):
    return str(np.dtype(numba.np.numpy_support.as_dtype(nb_type)))


def type_to_json(t):
    """A Numba argument type as plain data (arrays, scalars and tuples of them)."""
    if isinstance(t, numba.types.Array):
        return {"array": _dtype_name(t.dtype), "ndim": t.ndim, "layout": t.layout,
                "readonly": not t.mutable}  # fmt: skip
    if isinstance(t, numba.types.Number | numba.types.Boolean):
        return {"scalar": _dtype_name(t)}
    if isinstance(t, numba.types.BaseTuple):
        return {"tuple": [type_to_json(item) for item in t]}
    raise RefError(f"argument type {t} is not an array, a number or a tuple of them")


def type_from_json(d):
    if "array" in d:
        dtype = numba.from_dtype(np.dtype(d["array"]))
        return numba.types.Array(dtype, d["ndim"], d["layout"], readonly=d["readonly"])
    if "scalar" in d:
        return numba.from_dtype(np.dtype(d["scalar"]))
    return numba.types.Tuple([type_from_json(item) for item in d["tuple"]])


_SHORT = {"float32": "f32", "float64": "f64", "bool": "b1"}


def show_type(d):
    """Short form for the table: ``f32[4d]`` (C-contiguous), ``f64[2d,A]``, ``int64``, ``(i64 x8)``."""
    if "array" in d:
        dt = _SHORT.get(d["array"], d["array"].replace("int", "i").replace("ui", "u"))
        layout = "" if d["layout"] == "C" else "," + d["layout"]
        return f"{dt}[{d['ndim']}d{layout}{',ro' if d['readonly'] else ''}]"
    if "scalar" in d:
        return d["scalar"]
    items = [show_type(item) for item in d["tuple"]]
    if items and all(i == items[0] for i in items):
        return f"({items[0]} x{len(items)})"
    return "(" + ", ".join(items) + ")"
