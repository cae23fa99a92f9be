"""Theoretical occupancy: the share of an SM's warp slots that a kernel's blocks can fill, limited
by threads, blocks, registers and shared memory per SM, as CUDA's occupancy calculator computes it.

E.g. 128-thread blocks (4 warps) of a kernel using 40 registers per thread: a warp takes
40 x 32 = 1280 registers (already a multiple of the 256-register allocation unit), so 65536 / 1280
= 51 warps fit, 12 blocks of 4 warps = 48 of 64 warp slots: 75 %.
"""

import math

__all__ = ["occupancy", "ARCHS"]

# Per compute capability: warp slots, blocks, registers and shared memory per SM; the register
# allocation unit (per warp) and the shared-memory allocation unit and per-block reservation.
ARCHS = {
    (7, 0): dict(warps=64, blocks=32, regs=65536, reg_unit=256, smem=96 << 10, smem_unit=256,
                 smem_reserved=0),
    (8, 0): dict(warps=64, blocks=32, regs=65536, reg_unit=256, smem=164 << 10, smem_unit=128,
                 smem_reserved=1 << 10),
    (9, 0): dict(warps=64, blocks=32, regs=65536, reg_unit=256, smem=228 << 10, smem_unit=128,
                 smem_reserved=1 << 10),
}  # fmt: skip


def _round_up(n, unit):
    return math.ceil(n / unit) * unit


def occupancy(cc, threads, registers, smem):
    """Fraction (0..1) of warp slots in use for blocks of ``threads`` threads, ``registers`` per
    thread and ``smem`` bytes of static shared memory per block, on compute capability ``cc``."""
    a = ARCHS[cc]
    warps = math.ceil(threads / 32)
    if warps == 0 or threads > 1024:
        return 0.0
    blocks = min(a["blocks"], a["warps"] // warps)
    if registers:
        per_warp = _round_up(registers * 32, a["reg_unit"])
        blocks = min(blocks, (a["regs"] // per_warp) // warps)
    per_block = _round_up(smem + a["smem_reserved"], a["smem_unit"])
    if per_block:
        blocks = min(blocks, a["smem"] // per_block)
    return blocks * warps / a["warps"]
