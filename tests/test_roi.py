"""RoIPool / RoIWarp / RoIAlign: kernels and ops against the loop references in reference_roi.py,
gradients, the CUDA kernels (simulator or real GPU) against the CPU ones, edge cases, errors."""

import os

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import cuda
from reference_roi import (
    c_round,
    roi_align_backward_ref,
    roi_align_ref,
    roi_pool_backward_ref,
    roi_pool_ref,
)
from strategies import float_arrays

import minidense
from minidense import gpu
from minidense.kernels import roi as K
from minidense.kernels import roi_align as KA
from minidense.kernels import roi_pool as KP
from minidense.ops.roi import roi_align, roi_pool, roi_warp

OPS = ("align", "warp", "pool")
DTYPES = (np.float32, np.float64)
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
GPU = os.environ.get("MINIDENSE_TEST_GPU") == "1"


def make_case(seed, N=2, C=3, H=6, W=7, K_=5, scale=0.5, dtype=np.float64):
    """Features and (K, 5) RoIs in image pixels, many partly (some wholly) outside the map."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    size = np.array([W, H]) / scale
    xy1 = rng.uniform(-0.3, 1.0, size=(K_, 2)) * size
    wh = rng.uniform(0.0, 0.8, size=(K_, 2)) * size
    rois = np.concatenate([rng.integers(0, N, size=(K_, 1)), xy1, xy1 + wh], axis=1)
    return x, rois


def _as_the_ops_pass_them(x, rois, size):
    """The kernels trust their callers: the ops hand them ``(PH, PW)`` and host boxes in the
    features' dtype."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    return (rois.astype(x.dtype) if isinstance(rois, np.ndarray) else rois), size


def pool_forward(x, rois, size, scale=1.0):
    return KP.roi_pool_forward(x, *_as_the_ops_pass_them(x, rois, size), scale)


def align_forward(warp):
    fwd = KA.roi_warp_forward if warp else KA.roi_align_forward
    return lambda x, rois, size, *args: fwd(x, *_as_the_ops_pass_them(x, rois, size), *args)


def align_backward(warp):
    return KA.roi_warp_backward if warp else KA.roi_align_backward


def reference(op, x, rois, size, scale, sr=-1, aligned=False):
    if op == "pool":
        return roi_pool_ref(x, rois, *size, scale)[0]
    return roi_align_ref(x, rois, *size, scale, sr, aligned, quantize=op == "warp")


def kernel_forward(op, x, rois, size, scale, sr=-1, aligned=False):
    if op == "pool":
        return pool_forward(x, rois, size, scale)[0]
    fwd = align_forward(op == "warp")
    return fwd(x, rois, size, scale, sr, aligned)


def public(op):
    return {"align": roi_align, "warp": roi_warp, "pool": roi_pool}[op]


def call(op, x, boxes, size, scale=1.0, sr=-1, aligned=False):
    if op == "pool":
        return roi_pool(x, boxes, size, scale)
    return public(op)(x, boxes, size, scale, sr, aligned)


def backward_pair(op, x, rois, g, size, scale, sr, aligned):
    """(kernel gradient, reference gradient) of the features for upstream gradient g."""
    if op == "pool":
        _, arg = pool_forward(x, rois, size, scale)
        _, arg_ref = roi_pool_ref(x, rois, *size, scale)
        np.testing.assert_array_equal(arg, arg_ref)
        return KP.roi_pool_backward(g, arg, rois, x.shape), roi_pool_backward_ref(
            g, arg_ref, rois, x.shape
        )
    bwd = align_backward(op == "warp")
    ref = roi_align_backward_ref(g, rois, x.shape, scale, sr, aligned, quantize=op == "warp")
    return bwd(g, rois, x.shape, scale, sr, aligned), ref


# ------------------------------------------------------------------------ DESIGN.md test vectors


def test_design_check_values_aligned_false_and_true():
    x = minidense.tensor(np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5))
    box = np.array([[0, 1, 1, 3, 3]], dtype=np.float64)
    got = roi_align(x, box, 4, 1.0, 0, aligned=False).numpy()[0, 0]
    expected = [[7.5, 8, 8.5, 9], [10, 10.5, 11, 11.5], [12.5, 13, 13.5, 14], [15, 15.5, 16, 16.5]]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    got = roi_align(x, box, 4, 1.0, 0, aligned=True).numpy()[0, 0]
    expected = [[4.5, 5, 5.5, 6], [7, 7.5, 8, 8.5], [9.5, 10, 10.5, 11], [12, 12.5, 13, 13.5]]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_c_round_halves_away_from_zero():
    values = [0.5, 1.5, 2.5, -0.5, -2.5, 0.49999999999999994, 2.4999999999999996, -1.2]
    expected = [1, 2, 3, -1, -3, 0, 2, -1]
    assert [K.c_round(v) for v in values] == expected
    assert [c_round(v) for v in values] == expected


def test_roi_pool_uses_c_rounding_not_bankers():
    # x1 * scale = 2.5 starts the box at column 3 (np.round would give 2, value 2).
    x = minidense.tensor(np.arange(6, dtype=np.float64).reshape(1, 1, 1, 6))
    out = roi_pool(x, np.array([[0, 2.5, 0, 2.5, 0]]), 1).numpy()
    assert out.item() == 3.0


def test_box_geometry_is_computed_in_the_features_dtype():
    # 45 * 0.7 is 31.5 in float32 but 31.499999999999996 in float64, so RoIPool's C rounding starts
    # the one-cell box at column 32 in float32 and at 31 in float64 (torchvision computes in the
    # features' dtype too). The reference, the CPU kernel and the CUDA kernel agree on both.
    assert np.float32(45) * np.float32(0.7) == 31.5 and 45 * 0.7 < 31.5
    for dtype, column in ((np.float32, 32), (np.float64, 31)):
        x = np.arange(40, dtype=dtype).reshape(1, 1, 1, 40)
        rois = np.array([[0, 45.0, 0.0, 45.0, 0.0]], dtype)
        assert roi_pool(minidense.tensor(x), rois, 1, 0.7).item() == column
        assert roi_pool_ref(x, rois, 1, 1, 0.7)[0].item() == column
        on_device = pool_forward(gpu.to_device(x), gpu.to_device(rois), 1, 0.7)[0]
        assert on_device.copy_to_host().item() == column
        # roi_warp rounds the same way, then samples its 1-cell box at its middle: column + 0.5
        warped = roi_warp(minidense.tensor(x), rois, 1, 0.7, 1).item()
        assert warped == roi_align_ref(x, rois, 1, 1, 0.7, 1, quantize=True).item() == column + 0.5


def test_roi_warp_is_roi_align_of_the_rounded_box():
    x, _ = make_case(0)
    xt = minidense.tensor(x)
    for aligned in (False, True):
        warped = roi_warp(xt, np.array([[1, 0.4, 1.6, 5.5, 4.49]]), 3, 1.0, 2, aligned).numpy()
        snapped = roi_align(xt, np.array([[1, 0.0, 2.0, 6.0, 4.0]]), 3, 1.0, 2, aligned).numpy()
        np.testing.assert_allclose(warped, snapped, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------ forward vs reference


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ("contiguous", "permuted"))
def test_forward_matches_reference(op, dtype, layout):
    x, rois = make_case(1, dtype=dtype)
    if layout == "permuted":  # a (N, C, H, W) view of channels-last memory: not C-contiguous
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        assert not x.flags.c_contiguous
    for size, sr, aligned in (((2, 3), -1, False), ((3, 2), 2, True), ((1, 1), 0, True)):
        out = call(op, minidense.tensor(x), rois.astype(dtype), size, 0.5, sr, aligned)
        assert out.dtype == dtype and out.shape == (len(rois), 3) + size
        ref = reference(op, x, rois.astype(dtype), size, 0.5, sr, aligned)
        np.testing.assert_allclose(out.numpy(), ref, **TOL[dtype])


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_kernel_matches_reference(op, dtype):
    x, rois = make_case(2, dtype=dtype)
    for size, sr, aligned in (((2, 3), -1, False), ((3, 3), 2, True)):
        g = np.random.default_rng(3).standard_normal((len(rois), 3) + size).astype(dtype)
        got, ref = backward_pair(op, x, rois, g, size, 0.5, sr, aligned)
        assert got.dtype == dtype and got.shape == x.shape
        np.testing.assert_allclose(got, ref, **TOL[dtype])


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("seed", (0, 1, 2))
def test_gradcheck_wrt_features(op, seed):
    x, rois = make_case(seed, N=2, C=2, H=4, W=5, K_=3, scale=1.0)
    xt = minidense.tensor(x, requires_grad=True)
    aligned = seed % 2 == 1
    fn = lambda t: call(op, t, rois, (2, 2), 1.0, seed - 1, aligned)  # noqa: E731
    assert minidense.gradcheck(fn, [xt], atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("op", OPS)
def test_grad_reaches_a_reused_input_through_two_ops(op):
    # The features feed two RoI ops (a node used twice): both gradients must add up.
    x, rois = make_case(4, C=2, H=4, W=4, K_=2, scale=1.0)
    xt = minidense.tensor(x, requires_grad=True)
    out = call(op, xt, rois, 2, 1.0).sum() + call(op, xt, rois[::-1].copy(), 2, 1.0).sum()
    out.backward()
    g = np.ones((2, 2, 2, 2))
    one, ref = backward_pair(op, x, rois, g, (2, 2), 1.0, -1, False)
    np.testing.assert_allclose(xt.grad.numpy(), 2 * ref, rtol=1e-12, atol=1e-12)


def test_boxes_get_no_gradient_and_list_format_matches_rows():
    x, rois = make_case(5, K_=4)
    xt = minidense.tensor(x, requires_grad=True)
    boxes = minidense.tensor(rois[:, 1:], requires_grad=True)
    per_image = [boxes.numpy()[rois[:, 0] == n] for n in range(2)]
    rows = np.concatenate(
        [np.concatenate([np.full((len(b), 1), n), b], 1) for n, b in enumerate(per_image)]
    )
    for op in OPS:
        a = call(op, xt, per_image, 2, 0.5).numpy()
        b = call(op, xt, rows, 2, 0.5).numpy()
        np.testing.assert_array_equal(a, b)
        out = call(op, xt, [minidense.tensor(p) for p in per_image], 2, 0.5)
        out.sum().backward()
        assert boxes.grad is None


def test_float64_boxes_are_converted_to_float32_features():
    x, rois = make_case(6, dtype=np.float32)
    rois[:, 1:] += 1e-6  # float64 boxes, not exact in float32: rounded like the features
    out = roi_align(minidense.tensor(x), rois, 2, 0.5).numpy()
    expected = roi_align(minidense.tensor(x), rois.astype(np.float32), 2, 0.5).numpy()
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


# ------------------------------------------------------------------------ edge cases


@pytest.mark.parametrize("op", OPS)
def test_box_wholly_outside_gives_zeros_and_zero_grad(op):
    x, _ = make_case(7)
    xt = minidense.tensor(x, requires_grad=True)
    far = np.array([[0, 100, 100, 120, 130], [1, -90, -80, -40, -30]], dtype=np.float64)
    out = call(op, xt, far, 2, 0.5, 2)
    np.testing.assert_array_equal(out.numpy(), 0)
    out.sum().backward()
    np.testing.assert_array_equal(xt.grad.numpy(), 0)
    if op == "pool":
        np.testing.assert_array_equal(pool_forward(x, far, 2, 0.5)[1], -1)


def test_samples_on_the_map_edge_y_equal_H_count_but_beyond_is_zero():
    # H = 4, one sample per bin at the bin centre. Box rows 3..5: the sample at y = 4 = H is
    # inside (clamped to row 3); rows 3..5.2 put it at 4.1 > H: zero.
    f = np.arange(20, dtype=np.float64).reshape(1, 1, 4, 5)
    xt = minidense.tensor(f)
    inside = roi_align(xt, np.array([[0, 0.5, 3, 1.5, 5]]), 1, 1.0, 1).numpy().item()
    assert inside == f[0, 0, 3, 1]
    beyond = roi_align(xt, np.array([[0, 0.5, 3, 1.5, 5.2]]), 1, 1.0, 1).numpy().item()
    assert beyond == 0.0
    # y = -1 exactly is inside (row 0), below it is zero.
    at = roi_align(xt, np.array([[0, 1.5, -2, 2.5, 0]]), 1, 1.0, 1).numpy().item()
    assert at == f[0, 0, 0, 2]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("aligned", (False, True))
@pytest.mark.parametrize("sr", (-1, 0, 1, 2, 7))
def test_degenerate_and_tiny_boxes(op, aligned, sr):
    x, _ = make_case(8, dtype=np.float64)
    rois = np.array(
        [
            [0, 3.0, 2.0, 3.0, 9.0],  # zero width
            [1, 1.0, 4.0, 8.0, 4.0],  # zero height
            [0, 5.0, 5.0, 5.0, 5.0],  # a point
            [1, 2.0, 3.0, 2.3, 3.2],  # tiny (aligned: grid ceil(0.15 / 2) = 1)
            [0, -3.0, -3.0, 30.0, 30.0],  # larger than the map
        ]
    )
    out = call(op, minidense.tensor(x), rois, 2, 0.5, sr, aligned).numpy()
    ref = reference(op, x, rois, (2, 2), 0.5, sr, aligned)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    if op == "align" and aligned and sr <= 0:
        np.testing.assert_array_equal(out[:3], 0)  # empty adaptive grid: the bin is 0


@pytest.mark.parametrize("sr", (-1, 2))
def test_negative_size_with_aligned_in_the_kernel(sr):
    # The public ops refuse x2 < x1; the kernel follows torchvision: used as is when aligned.
    x, _ = make_case(9)
    rois = np.array([[0, 6.0, 6.0, 2.0, 3.0], [1, 4.0, 2.0, 3.8, 1.9]])
    out = align_forward(False)(x, rois, 2, 0.5, sr, True)
    np.testing.assert_allclose(out, roi_align_ref(x, rois, 2, 2, 0.5, sr, True), atol=1e-12)
    if sr <= 0:
        np.testing.assert_array_equal(out, 0)
    g = np.ones_like(out)
    ref = roi_align_backward_ref(g, rois, x.shape, 0.5, sr, True)
    np.testing.assert_allclose(KA.roi_align_backward(g, rois, x.shape, 0.5, sr, True), ref)


@pytest.mark.parametrize("op", OPS)
def test_no_boxes_gives_empty_output_and_zero_grad(op):
    x, _ = make_case(10)
    xt = minidense.tensor(x, requires_grad=True)
    out = call(op, xt, np.zeros((0, 5)), (2, 3), 0.5)
    assert out.shape == (0, 3, 2, 3)
    out.sum().backward()
    assert xt.grad.shape == x.shape
    np.testing.assert_array_equal(xt.grad.numpy(), 0)
    out = call(op, xt, [np.zeros((0, 4)), np.zeros((0, 4))], 2, 0.5)
    assert out.shape == (0, 3, 2, 2)


def test_rois_read_their_own_image():
    x, _ = make_case(11)
    box = [2.0, 1.0, 9.0, 8.0]
    for op in OPS:
        out = call(op, minidense.tensor(x), np.array([[0, *box], [1, *box]]), 2, 0.5).numpy()
        for n in (0, 1):
            alone = call(op, minidense.tensor(x[n : n + 1]), np.array([[0, *box]]), 2, 0.5)
            np.testing.assert_array_equal(out[n], alone.numpy()[0])
        assert not np.array_equal(out[0], out[1])


def test_roi_pool_ties_first_maximum_wins():
    x = np.zeros((1, 2, 4, 4))
    x[0, 1, 1, 2] = x[0, 1, 2, 1] = 5.0  # two maxima in one bin: (1, 2) comes first
    out, arg = pool_forward(x, np.array([[0, 0, 0, 3, 3]], dtype=float), 1)
    assert arg[0, 0, 0, 0] == 0  # constant channel: the first cell of the bin
    assert arg[0, 1, 0, 0] == 1 * 4 + 2 and out[0, 1, 0, 0] == 5.0
    xt = minidense.tensor(x, requires_grad=True)
    roi_pool(xt, np.array([[0, 0, 0, 3, 3]]), 1).sum().backward()
    expected = np.zeros_like(x)
    expected[0, 0, 0, 0] = expected[0, 1, 1, 2] = 1.0
    np.testing.assert_array_equal(xt.grad.numpy(), expected)


@pytest.mark.parametrize("op", OPS)
def test_cpu_backward_is_deterministic_and_thread_count_independent(op):
    # Many overlapping RoIs and several channel blocks: any race or order change would show.
    x, rois = make_case(12, N=2, C=40, H=9, W=9, K_=60, scale=1.0, dtype=np.float32)
    rois[:, 3:] = rois[:, 1:3] + 4.0  # overlap a lot
    g = np.random.default_rng(0).standard_normal((60, 40, 3, 3)).astype(np.float32)
    runs = [backward_pair(op, x, rois, g, (3, 3), 1.0, 2, True)[0] for _ in range(2)]
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        runs.append(backward_pair(op, x, rois, g, (3, 3), 1.0, 2, True)[0])
    finally:
        numba.set_num_threads(before)
    assert runs[0].tobytes() == runs[1].tobytes() == runs[2].tobytes()


# ------------------------------------------------------------------------ CUDA vs CPU kernels


def _cuda_forward_backward(op, x, rois, size, scale, sr, aligned, g):
    dx, dr, dg = gpu.to_device(x), gpu.to_device(rois), gpu.to_device(g)
    if op == "pool":
        out, arg = pool_forward(dx, dr, size, scale)
        gx = KP.roi_pool_backward(dg, arg, dr, x.shape)
        return out.copy_to_host(), gx.copy_to_host(), arg.copy_to_host()
    fwd = align_forward(op == "warp")
    bwd = align_backward(op == "warp")
    out = fwd(dx, dr, size, scale, sr, aligned)
    return out.copy_to_host(), bwd(dg, dr, x.shape, scale, sr, aligned).copy_to_host(), None


def _cpu_forward_backward(op, x, rois, size, scale, sr, aligned, g):
    if op == "pool":
        out, arg = pool_forward(x, rois, size, scale)
        return out, KP.roi_pool_backward(g, arg, rois, x.shape), arg
    fwd = align_forward(op == "warp")
    bwd = align_backward(op == "warp")
    return fwd(x, rois, size, scale, sr, aligned), bwd(g, rois, x.shape, scale, sr, aligned), None


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_kernels_match_cpu(op, dtype):
    x, rois = make_case(13, N=2, C=3, H=6, W=6, K_=3, scale=0.5, dtype=dtype)
    rois = rois.astype(dtype)
    g = np.random.default_rng(1).standard_normal((3, 3, 2, 2)).astype(dtype)
    for sr, aligned in ((-1, False), (2, True)):
        cpu_res = _cpu_forward_backward(op, x, rois, 2, 0.5, sr, aligned, g)
        gpu_res = _cuda_forward_backward(op, x, rois, 2, 0.5, sr, aligned, g)
        assert gpu_res[0].dtype == dtype and gpu_res[1].dtype == dtype
        for a, b in zip(cpu_res[:2], gpu_res[:2], strict=True):
            np.testing.assert_allclose(b, a, **TOL[dtype])
        if op == "pool":
            np.testing.assert_array_equal(gpu_res[2], cpu_res[2])


def test_cuda_kernels_handle_no_boxes():
    x, _ = make_case(14)
    out = align_forward(False)(gpu.to_device(x), gpu.to_device(np.zeros((0, 5))), 2)
    assert out.shape == (0, 3, 2, 2)
    gx = KA.roi_align_backward(gpu.to_device(np.zeros((0, 3, 2, 2))), None, x.shape)
    np.testing.assert_array_equal(gx.copy_to_host(), 0)


@pytest.mark.gpu
@pytest.mark.skipif(
    not (GPU and cuda.is_available()), reason="needs MINIDENSE_TEST_GPU=1 and a GPU"
)
@pytest.mark.parametrize("op", OPS)
def test_gpu_larger_shapes_match_cpu(op):
    x, rois = make_case(15, N=2, C=32, H=25, W=25, K_=200, scale=1 / 8, dtype=np.float32)
    rois = rois.astype(np.float32)
    g = np.random.default_rng(2).standard_normal((200, 32, 7, 7)).astype(np.float32)
    cpu_res = _cpu_forward_backward(op, x, rois, 7, 1 / 8, 2, True, g)
    gpu_res = _cuda_forward_backward(op, x, rois, 7, 1 / 8, 2, True, g)
    np.testing.assert_allclose(gpu_res[0], cpu_res[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gpu_res[1], cpu_res[1], rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------ fuzzing


@st.composite
def roi_problems(draw):
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    x = draw(float_arrays((N, C, H, W), layout=draw(st.sampled_from(("contiguous", "permuted")))))
    scale = draw(st.sampled_from((0.25, 0.5, 1.0, 1 / 3)))
    coord = st.floats(-3 / scale, (max(H, W) + 3) / scale, allow_nan=False, width=32)
    size = st.floats(0, (max(H, W) + 2) / scale, allow_nan=False, width=32)
    rois = [
        [draw(st.integers(0, N - 1)), x1 := draw(coord), y1 := draw(coord)]
        + [x1 + draw(size), y1 + draw(size)]
        for _ in range(draw(st.integers(0, 4)))
    ]
    rois = np.array(rois, dtype=np.float64).reshape(-1, 5)
    out_size = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return x, rois, out_size, scale, draw(st.integers(-1, 3)), draw(st.booleans())


@settings(max_examples=30, deadline=None)
@given(problem=roi_problems(), op=st.sampled_from(OPS))
def test_fuzz_against_reference(problem, op):
    x, rois, size, scale, sr, aligned = problem
    out = kernel_forward(op, x, rois, size, scale, sr, aligned)
    ref = reference(op, x, rois, size, scale, sr, aligned)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    g = np.arange(out.size, dtype=np.float64).reshape(out.shape) % 3 - 1
    got, ref_g = backward_pair(op, x, rois, g, size, scale, sr, aligned)
    np.testing.assert_allclose(got, ref_g, rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize("op", OPS)
def test_bad_inputs_raise_clear_errors(op):
    x, rois = make_case(16)
    xt = minidense.tensor(x)
    f = public(op)
    with pytest.raises(TypeError, match="input must be a minidense Tensor"):
        f(x, rois, 2)
    with pytest.raises(ValueError, match=r"input must have shape \(N, C, H, W\)"):
        f(minidense.tensor(x[0]), rois, 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        f(minidense.tensor(np.zeros((1, 1, 2, 2), dtype=np.int64)), rois[:1] * 0, 2)
    with pytest.raises(ValueError, match=r"shape \(K, 5\)"):
        f(xt, rois[:, 1:], 2)
    with pytest.raises(ValueError, match=r"boxes\[1\] must have shape \(K_i, 4\)"):
        f(xt, [rois[:2, 1:], rois[:2]], 2)
    with pytest.raises(TypeError, match="boxes must be"):
        f(xt, "boxes", 2)
    bad = rois.copy()
    bad[2, 0] = 2
    with pytest.raises(
        ValueError, match=r"row 2 has batch index 2.0, expected an integer in \[0, 2\)"
    ):
        f(xt, bad, 2)
    bad[2, 0] = 0.5
    with pytest.raises(ValueError, match="row 2 has batch index 0.5"):
        f(xt, bad, 2)
    bad = rois.copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="row 1 has a NaN or infinite"):
        f(xt, bad, 2)
    bad[1, 3] = np.inf
    with pytest.raises(ValueError, match="row 1 has a NaN or infinite"):
        f(xt, bad, 2)
    bad = rois.copy()
    bad[3, 4] = bad[3, 2] - 1
    with pytest.raises(ValueError, match="row 3 .* expected x2 >= x1 and y2 >= y1"):
        f(xt, bad, 2)
    for size in (0, (2, -1)):
        with pytest.raises(ValueError, match="output_size must be positive"):
            f(xt, rois, size)
    for size in (2.5, (2, 2, 2), "2", True):
        with pytest.raises(TypeError, match="output_size must be an int or a pair"):
            f(xt, rois, size)
    for scale in (0, -0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="spatial_scale must be positive"):
            f(xt, rois, 2, scale)
    with pytest.raises(ValueError, match="'cpu' but boxes are on 'cuda'"):
        f(xt, cuda.to_device(rois), 2)
    if op != "pool":
        with pytest.raises(TypeError, match="sampling_ratio must be an int"):
            f(xt, rois, 2, 1.0, 1.5)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape", [(1, 2, 3, 0), (1, 2, 0, 3), (0, 2, 0, 0)])
def test_an_empty_feature_map_is_refused(op, shape):
    """H = 0 or W = 0 leaves no cell to sample: refused before any kernel (which would read out
    of bounds, or divide by zero), with and without boxes."""
    x = minidense.tensor(np.ones(shape, dtype=np.float32))
    boxes = np.array([[0, -1, 0, 0, 2.0]]) if shape[0] else np.zeros((0, 5))
    msg = rf"{public(op).__name__}: input's spatial size \(H, W\) must be > 0, got shape"
    with pytest.raises(ValueError, match=msg):
        call(op, x, boxes, 2, sr=2)


# ------------------------------------------------------------------------ picture


def test_plot_roi_sampling_draws_three_panels():
    from minidense.viz.roi import plot_roi_sampling

    f = np.add.outer(np.arange(8.0), np.arange(8.0))
    fig = plot_roi_sampling(f, (9, 13, 52, 41), (2, 2), spatial_scale=1 / 8, sampling_ratio=2)
    assert len(fig.axes) == 3
    assert [a.get_title().split(":")[0] for a in fig.axes] == ["RoIPool", "RoIWarp", "RoIAlign"]
    # RoIWarp and RoIAlign: 2 x 2 bins x 2 x 2 samples; RoIPool: one max cell per bin.
    assert len(fig.axes[2].collections[-1].get_offsets()) == 16
    assert len(fig.axes[1].collections[-1].get_offsets()) == 16
    assert len(fig.axes[0].collections[-1].get_offsets()) == 4
    with pytest.raises(ValueError, match="feature_map"):
        plot_roi_sampling(np.zeros(3), (0, 0, 1, 1))
