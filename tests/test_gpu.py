"""The GPU layer (``minidense.gpu``): the array type, the launch policy, the strided copy, the fill
and the tiled matmul that the CUDA backend and the kernels share. Under the CUDA simulator by
default (conftest.py)."""

import numpy as np
import pytest
from numba import cuda

from minidense import gpu
from minidense.gpu import layout


def test_launch_policy_says_its_gpu_block_and_covers_any_size():
    config = gpu.launch(1000)
    assert config.gpu_threads == gpu.GPU_THREADS
    assert config[1] == gpu.THREADS and config[0] >= 1
    assert tuple(gpu.launch(0)) == (1, gpu.THREADS)  # at least one block
    tiles = gpu.tiled(3)
    assert tiles[1] == (gpu.TILE, gpu.TILE) and tiles.gpu_threads == gpu.GPU_TILE**2
    if gpu.SIMULATOR:  # two blocks, so the grid-stride loops cross a block boundary in the tests
        assert tuple(config) == (2, 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_broadcasts_batches_and_reads_transposes_in_place(dtype):
    rng = np.random.default_rng(6)
    a = rng.standard_normal((2, 5, 11)).astype(dtype)
    b = rng.standard_normal((11, 9)).astype(dtype)
    got = gpu.matmul(gpu.to_device(a), gpu.to_device(b))
    assert isinstance(got, gpu.CudaArray) and got.shape == (2, 5, 9)
    np.testing.assert_allclose(got.copy_to_host(), a @ b, rtol=1e-5, atol=1e-5)
    # (2, 11, 5)ᵀ against (4, 2, 9, 11)ᵀ: the batch axes broadcast to (4, 2)
    at = rng.standard_normal((2, 11, 5)).astype(dtype)
    bt = rng.standard_normal((4, 2, 9, 11)).astype(dtype)
    got = gpu.matmul(gpu.to_device(at), gpu.to_device(bt), trans_a=True, trans_b=True)
    want = np.swapaxes(at, -1, -2) @ np.swapaxes(bt, -1, -2)
    np.testing.assert_allclose(got.copy_to_host(), want, rtol=1e-5, atol=1e-5)
    m = rng.standard_normal((3, 4)).astype(dtype)
    out = gpu.empty((3, 3), dtype)
    assert gpu.matmul(gpu.to_device(m), gpu.to_device(m), trans_b=True, out=out) is out
    np.testing.assert_allclose(out.copy_to_host(), m @ m.T, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="do not multiply"):
        gpu.matmul(gpu.to_device(m), gpu.to_device(m))
    empty_k = gpu.matmul(gpu.to_device(m[:, :0]), gpu.to_device(m[:0]))
    np.testing.assert_array_equal(empty_k.copy_to_host(), np.zeros((3, 4)))


def test_strided_copy_reads_and_writes_at_any_strides():
    src = np.arange(24.0).reshape(2, 3, 4)
    dst = gpu.zeros((4, 3, 2), np.float64)
    # a transpose: dst[k, j, i] = src[i, j, k]
    layout.copy(dst._buf, 0, layout.contiguous_strides(dst.shape), gpu.to_device(src)._buf, 0,
                (1, 4, 12), dst.shape)  # fmt: skip
    np.testing.assert_array_equal(dst.copy_to_host(), src.transpose(2, 1, 0))
    # a broadcast (stride 0) into an offset region
    row = gpu.to_device(np.array([7.0, 8.0]))
    layout.copy(dst._buf, 6, (2, 1), row._buf, 0, (0, 1), (3, 2))
    np.testing.assert_array_equal(dst.copy_to_host()[1], [[7, 8]] * 3)


def test_fill_and_zeros_stay_on_the_device_in_the_array_dtype():
    z = gpu.zeros((2, 3), np.int32)
    assert z.dtype == np.int32 and z.copy_to_host().tolist() == [[0] * 3] * 2
    z.fill(7.9)
    assert z.copy_to_host().tolist() == [[7] * 3] * 2  # cast to int32, as NumPy's fill


def test_asarray_wraps_raw_device_arrays_without_copying_contiguous_ones():
    host = np.arange(12.0).reshape(3, 4)
    raw = cuda.to_device(host)
    wrapped = gpu.asarray(raw)
    assert isinstance(wrapped, gpu.CudaArray) and gpu.asarray(wrapped) is wrapped
    raw[0, 0] = -1.0  # a view: the wrapped array sees the write
    assert wrapped.copy_to_host()[0, 0] == -1.0
    for view in (raw.T, raw[:, ::2], raw[::2]):  # not contiguous: copied into a contiguous array
        got = gpu.asarray(view)
        np.testing.assert_array_equal(got.copy_to_host(), view.copy_to_host())
    assert gpu.is_device_array(raw) and gpu.is_device_array(wrapped)
    assert not gpu.is_device_array(host)


def test_reshape_is_a_view_and_copy_is_not():
    a = gpu.to_device(np.arange(6.0))
    v = a.reshape(2, -1)
    c = a.copy()
    a.fill(1)
    assert v.copy_to_host().tolist() == [[1.0] * 3] * 2
    assert c.copy_to_host().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    with pytest.raises(ValueError, match="cannot reshape array of size 6"):
        a.reshape(4, -1)
    with pytest.raises(TypeError, match="lives on the GPU"):
        np.asarray(a)
