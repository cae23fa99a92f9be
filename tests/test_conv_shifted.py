"""conv2d's forward as one BLAS product per kernel tap (``kernels/conv_shifted.py``): against the
loop reference, the im2col path, the gradients, the simulator, and when it is (not) taken."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minidense
from minidense import gpu
from minidense.kernels import conv as K
from minidense.kernels import conv_shifted as S
from minidense.ops.conv import conv2d
from minidense.tensor import Tensor
from tests import strategies as ST
from tests.reference_dense import conv2d_ref

FLOATS = (np.float32, np.float64)
# (x shape, weight shape, padding, dilation), all stride 1 and one group
CASES = [
    ((2, 3, 5, 6), (4, 3, 3, 3), 1, 1),  # odd sizes, "same" padding
    ((1, 2, 7, 7), (2, 2, 3, 3), 2, 2),  # dilation
    ((2, 2, 9, 4), (3, 2, 3, 5), (1, 2), 1),  # rectangular kernel and padding
    ((3, 4, 3, 5), (6, 4, 1, 1), 1, 1),  # 1x1 kernel with padding: not its own columns
    ((1, 2, 3, 3), (2, 2, 3, 3), 0, 1),  # no padding, output 1x1
    ((1, 2, 4, 5), (3, 2, 3, 3), 3, 1),  # padding larger than the kernel's half
    ((2, 1, 6, 1), (1, 1, 2, 1), (1, 0), (2, 1)),  # one column, one channel
]


def on_every_map(mp):
    """Take the tap-product path whatever the map's size and channels (it starts at 32x32 maps
    and 4 channels otherwise)."""
    mp.setattr(S, "MIN_POSITIONS", 1)
    mp.setattr(S, "MIN_CHANNELS", 1)


@pytest.fixture
def every_map(monkeypatch):
    on_every_map(monkeypatch)


def taken(monkeypatch):
    """A list that gets one entry per call of the tap-product forward."""
    calls, real = [], S.conv2d_forward_shifted
    monkeypatch.setattr(S, "conv2d_forward_shifted", lambda *a: calls.append(1) or real(*a))
    return calls


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [True, False])
def test_forward_matches_the_reference(case, dtype, with_bias, every_map, monkeypatch):
    xs, ws, p, d = case
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if with_bias else None
    calls = taken(monkeypatch)
    out = K.conv2d_forward(x[:, :, :, ::-1].copy()[:, :, :, ::-1], w, b, 1, p, d, 1)  # strided x
    assert calls and out.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, conv2d_ref(x, w, b, 1, p, d, 1), rtol=tol, atol=tol)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), g=ST.conv_geometries(max_groups=1), dtype=st.sampled_from(FLOATS))
def test_any_stride_one_geometry_matches_the_reference(data, g, dtype):
    """Random kernels, paddings, dilations, sizes and memory layouts of the input."""
    x = data.draw(ST.float_arrays(g["x"], dtype))
    w = data.draw(ST.float_arrays(g["w"], dtype))
    args = (1, g["padding"], g["dilation"], 1)
    with pytest.MonkeyPatch.context() as mp:
        on_every_map(mp)
        calls = taken(mp)
        out = K.conv2d_forward(x, w, None, *args)
    pointwise = g["w"][2:] == (1, 1) and g["padding"] == (0, 0)  # x is its own columns
    assert bool(calls) != pointwise
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out, conv2d_ref(x, w, None, *args), **tol)


@pytest.mark.parametrize("case", CASES[:3])
def test_forward_matches_the_im2col_path_in_chunks(case, monkeypatch):
    """The same numbers as im2col + one product, with the batch in one grid or one per sample."""
    xs, ws, p, d = case
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    im2col = K.conv2d_forward(x, w, b, 1, p, d, 1)
    on_every_map(monkeypatch)
    np.testing.assert_allclose(K.conv2d_forward(x, w, b, 1, p, d, 1), im2col, rtol=1e-12)
    monkeypatch.setattr(S, "GRID_BYTES", 1)  # one sample per grid
    np.testing.assert_allclose(K.conv2d_forward(x, w, b, 1, p, d, 1), im2col, rtol=1e-12)


def test_chunks_bound_the_output_grid_too(every_map, monkeypatch):
    """Few input channels and many output ones: the chunk is sized by the larger grid."""
    sizes, real = [], S.workspace
    monkeypatch.setattr(S, "workspace", lambda name, shape, dt: sizes.append(shape) or
                        real(name, shape, dt))  # fmt: skip
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((6, 1, 4, 4)), rng.standard_normal((8, 1, 3, 3))
    monkeypatch.setattr(S, "GRID_BYTES", 2 * 8 * 6 * 6 * x.itemsize)  # two samples of 8 channels
    np.testing.assert_allclose(K.conv2d_forward(x, w, None, 1, 1), conv2d_ref(x, w, None, 1, 1))
    assert max(shape[1] for shape in sizes) <= 2 * 6 * 6 + 2 * 6 + 2


def test_gradcheck_through_the_tap_products(every_map, monkeypatch):
    """The backward (im2col's) is the gradient of this forward."""
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    calls = taken(monkeypatch)
    assert minidense.gradcheck(lambda x, w, b: conv2d(x, w, b, padding=1, dilation=1), [x, w, b])
    assert calls


def test_taken_from_32x32_maps_and_4_channels_on_for_stride_one_single_groups(monkeypatch):
    rng = np.random.default_rng(3)
    calls = taken(monkeypatch)

    def run(hw, stride=1, groups=1, channels=4):
        x = rng.standard_normal((1, channels, *hw)).astype(np.float32)
        w = rng.standard_normal((2, channels // groups, 3, 3)).astype(np.float32)
        out = K.conv2d_forward(x, w, None, stride, 1, 1, groups)
        np.testing.assert_allclose(out, conv2d_ref(x, w, None, stride, 1, 1, groups), atol=1e-4)
        return len(calls)

    assert run((32, 31)) == 0  # 992 output pixels: im2col
    assert run((32, 32)) == 1
    assert run((32, 32), channels=3) == 1  # an RGB input: im2col
    assert run((64, 64), stride=2) == 1  # 32x32 outputs, but strided: im2col
    assert run((64, 64), groups=2) == 1  # grouped: im2col


def test_without_a_blas_to_call_conv2d_keeps_im2col(every_map, monkeypatch):
    monkeypatch.setattr(S, "blas_gemm", lambda dtype: None)
    calls = taken(monkeypatch)
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((4, 3, 3, 3))
    np.testing.assert_allclose(K.conv2d_forward(x, w, None, 1, 1), conv2d_ref(x, w, None, 1, 1))
    assert not calls


def test_blas_gemm_is_numpys_openblas_and_only_for_floats():
    if not S._openblas_paths():
        pytest.skip("this NumPy was built against another BLAS than its bundled OpenBLAS")
    assert S.blas_gemm(np.float32) is not None and S.blas_gemm(np.float64) is not None
    assert S.blas_gemm(np.int32) is None and S.blas_gemm(np.float16) is None


def test_a_gemm_that_computes_wrong_is_not_used():
    """``blas_gemm`` checks a found function on a small product first: one that ignores its
    arguments (as a BLAS does that refuses integers of the wrong width) is turned down."""
    for dtype in FLOATS:
        if S.blas_gemm(dtype) is not None:
            assert S._computes_right(S.blas_gemm(dtype), np.dtype(dtype))
        assert not S._computes_right(lambda *args: None, np.dtype(dtype))


def test_an_empty_batch_gives_an_empty_output(every_map, monkeypatch):
    calls = taken(monkeypatch)
    rng = np.random.default_rng(5)
    x, w = np.zeros((0, 2, 4, 4)), rng.standard_normal((3, 2, 3, 3))
    assert K.conv2d_forward(x, w, rng.standard_normal(3), 1, 1).shape == (0, 3, 4, 4)
    assert calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_tap_products_match_the_device_path(every_map, fast_simulator, dtype):
    """The device keeps im2col + its tiled product; under the simulator both give one answer."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
    w, b = rng.standard_normal((4, 3, 3, 3)).astype(dtype), rng.standard_normal(4).astype(dtype)
    want = K.conv2d_forward(x, w, b, 1, (1, 2), (1, 2), 1)
    D = gpu.to_device
    got = K.conv2d_forward(D(x), D(w), D(b), 1, (1, 2), (1, 2), 1).copy_to_host()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
