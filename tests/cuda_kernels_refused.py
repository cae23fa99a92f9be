"""Two kernels that Numba's CUDA simulator runs happily and a real GPU's compilers refuse, for
tests/test_check_cuda.py: the simulator is Python, so only NVVM and ptxas can catch them."""

from numba import cuda, float32


def _plus_one(v):  # a plain Python function: the simulator calls it, NVVM cannot
    return v + 1


@cuda.jit
def calls_a_python_function(out):
    out[0] = _plus_one(out[0])


@cuda.jit
def uses_too_much_shared_memory(out):
    # 20000 floats are 80 KB per block, over the 48 KB of static shared memory a block may have.
    tile = cuda.shared.array(20000, float32)
    tile[cuda.threadIdx.x] = out[0]
    cuda.syncthreads()
    out[0] = tile[0] + 1
