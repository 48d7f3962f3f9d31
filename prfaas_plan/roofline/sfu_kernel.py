"""The Triton kernel of the microbenchmark's special-function-unit probe (imported only by
:func:`prfaas_plan.roofline.microbench.measure`, where Triton is installed: it imports triton).

Each element runs ``STEPS`` chained base-2 exponentials in registers, x <- 2^-x (which stays in
[0.5, 1]), so the kernel is bound by the MUFU.EX2 rate, not by memory (8 B per element loaded
and stored against 256 exponentials).
"""

import triton
import triton.language as tl


@triton.jit
def exp_chain(x_ptr, out_ptr, STEPS: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    acc = tl.load(x_ptr + offs)
    for _ in range(STEPS):
        acc = tl.exp2(-acc)
    tl.store(out_ptr + offs, acc)
