#!/usr/bin/env python3
"""Sums a `perf report` by where the time goes: GEMM, elementwise kernels, threads, memory.

Reads the output of `perf report --no-children --sort sym` (lines such as
"  27.79%  [.] gemm_f32::microkernel::avx512f::f32::x4x6") and prints the share of samples in
each category, one per line. A symbol counts in the first category whose pattern it matches;
user-space symbols that match none are "everything else": the tape's bookkeeping (recording
nodes, the backward pass's queue, views and layouts) and the code around the kernels.

    perf record -o lstm.data target/release/tapeloop bench --cell lstm --seq-len 50 \\
        --batch 32 --input 128 --hidden 128 --warmup 5 --iterations 150
    perf report -i lstm.data --no-children --sort sym | benches/profile_categories.py
"""

import re
import sys

CATEGORIES = [
    ("GEMM microkernels", r"gemm_f32::microkernel"),
    ("GEMM packing and dispatch", r"gemm_common|gemm_f32::gemm|gemm::gemm"),
    ("a helper polling for the next op", r"Helpers::serve"),
    (
        "the caller waiting for a helper",
        r"for_each_block|WaitForClaimed|sched_yield|__schedule|finish_task_switch"
        r"|do_syscall_64|entry_SYSCALL|syscall_return|futex",
    ),
    ("elementwise SIMD loops", r"simd::(unary|binary|assign|binary_with)"),
    ("tiled transpose of column-major operands", r"ops::transpose::|transpose_tiled|ColumnMajor"),
    ("strided elementwise (for_each_run)", r"for_each_run"),
    ("memset", r"memset"),
    ("memmove / memcpy", r"memmove|memcpy"),
    (
        "kernel: page faults",
        r"clear_page|page_fault|handle_mm|folio|do_anonymous|alloc_pages|zap_|tlb|lru",
    ),
    ("malloc / free", r"mi_|_mi_|malloc|free"),
]

LINE = re.compile(r"\s*([\d.]+)%\s+\[(.)\]\s+(.*)")


def main() -> None:
    totals = {name: 0.0 for name, _ in CATEGORIES}
    kernel_other = user_other = 0.0
    for line in sys.stdin:
        match = LINE.match(line)
        if not match:
            continue
        share, space, symbol = float(match.group(1)), match.group(2), match.group(3)
        for name, pattern in CATEGORIES:
            if re.search(pattern, symbol):
                totals[name] += share
                break
        else:
            if space == "k":
                kernel_other += share
            else:
                user_other += share
    for name, _ in CATEGORIES:
        print(f"{name}: {totals[name]:.1f}%")
    print(f"kernel, other: {kernel_other:.1f}%")
    print(f"everything else: {user_other:.1f}%")


if __name__ == "__main__":
    main()
