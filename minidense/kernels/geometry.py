"""Window arithmetic of the dense kernels, per axis: the output size of a convolution, a
transposed convolution or a pooling window (PyTorch's formulas), and size arguments as pairs.

Plain host-side integer arithmetic, shared by the kernels and by the ops that validate their
arguments against it (e.g. "the kernel is larger than the padded input" is an output size < 1).
"""

__all__ = [
    "as_pair", "default_stride", "conv_output_size", "conv_transpose_output_size",
    "pool_output_size",
]  # fmt: skip


def as_pair(v):
    """An int means ``(v, v)``; a pair passes as a tuple. (No checks: the ops checked.)"""
    return (int(v), int(v)) if isinstance(v, int) or hasattr(v, "__index__") else tuple(v)


def default_stride(stride, kernel):
    """PyTorch's default for pooling: stride None (or an empty sequence) means the kernel size."""
    if stride is None or (isinstance(stride, tuple | list) and len(stride) == 0):
        return as_pair(kernel)
    return as_pair(stride)


def conv_output_size(size, kernel, stride, padding, dilation):
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_size(size, kernel, stride, padding, dilation, output_padding):
    """Output length of a transposed convolution along one axis."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def pool_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """Pooled length along one axis, including ceil_mode's correction: with ceil_mode the last
    window must still start inside the input or its left padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window would start in the right padding only
    return out
