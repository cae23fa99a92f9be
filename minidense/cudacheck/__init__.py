"""The CUDA compile check, ``python -m minidense check-cuda``: every CUDA kernel of minidense,
with the argument types it is really launched with, compiled by NVVM and assembled by ptxas for
real GPUs (sm_70, sm_80, sm_90) on a machine without one.

One job per module, in the order the check runs them:

* ``workload``: a small run of the library's ops on CUDA tensors;
* ``record``: notes each launch under Numba's CUDA simulator (kernel and argument types);
* ``refs``: names kernels and types in plain data, and finds them again in another process;
* ``inventory``: every kernel defined in the package, found without a list of names;
* ``compile``: NVVM to PTX, ptxas to machine code, the float64 count;
* ``occupancy``: theoretical occupancy from registers and shared memory;
* ``cache``: results kept between runs while neither the package nor the compilers change;
* ``report``: the table and the verdict; ``check``: all of it, for the command.

See docs/cuda-without-a-gpu.md.
"""
