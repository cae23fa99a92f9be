"""What a layer checks about its input before it computes: one message format for all layers,
naming the layer and the input it expects (type, rank, channels or features, dtype, device)."""

from ..tensor import Tensor


def check_input(layer, x, layout, ndim=None, min_ndim=None, axis=None, size=None, floating=True):
    """``x`` must be a float Tensor laid out as ``layout`` (e.g. "(N, 3, H, W)"): exactly ``ndim``
    or at least ``min_ndim`` dimensions, ``size`` entries along ``axis``, and in the dtype and
    on the device of the layer's parameters (if it has any). ``floating=False``: any dtype."""
    name = type(layer).__name__
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name} expects a minidense Tensor {layout}, got {type(x).__name__}; wrap arrays "
            "with minidense.tensor(x)"
        )
    if floating and x.dtype.kind != "f":
        raise TypeError(
            f"{name} expects a float32 or float64 input {layout}, got {x.dtype}; convert it with "
            ".float()"
        )
    if (ndim is not None and x.ndim != ndim) or (min_ndim is not None and x.ndim < min_ndim):
        n = ndim if ndim is not None else min_ndim
        rank = f"{'' if ndim is not None else 'at least '}{n} dimension{'s' if n > 1 else ''}"
        raise ValueError(f"{name} expects an input with {rank} {layout}, got shape {x.shape}")
    if axis is not None and x.shape[axis] != size:
        hint = ""
        if x.ndim == 4 and axis == 1 and x.shape[3] == size:
            hint = "; it looks like (N, H, W, C): use x.permute(0, 3, 1, 2)"
        raise ValueError(f"{name} expects {layout}, got shape {x.shape}{hint}")
    params = next(iter(layer._parameters.values()), None)
    if params is not None:
        if params.dtype != x.dtype:
            raise TypeError(
                f"{name}'s parameters are {params.dtype} but the input is {x.dtype}; convert the "
                f"input with .astype(np.{params.dtype}) (or the layer with .double()/.float())"
            )
        if params.device != x.device:
            raise ValueError(
                f"{name}'s parameters are on {params.device!r} but the input is on "
                f"{x.device!r}; move the layer with .to({x.device!r}) or the input with "
                f".to({params.device!r})"
            )
    return x
