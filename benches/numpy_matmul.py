"""OpenBLAS (through numpy) peer timings for benches/tensor.rs's matmul shapes.

Prints, for each shape, the median time of np.matmul on float32 operands and the GFLOP/s that
gives (2·m·k·n / median). Run with OpenBLAS limited to the threads tapeloop uses, and without the
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE overrides some machines here set (they pin an older kernel):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 \
        /work/venv/bin/python benches/numpy_matmul.py

threadpoolctl reports the BLAS, its kernel ("architecture") and thread count, so the record says
which code was measured. `--json` prints one JSON object instead (used by compare_matmul.py);
`--seconds S` sets the time spent per case (default 3); `--only 64x512x2048:Bt` runs one case.
"""

import argparse
import json
import os
import time

import numpy as np

try:
    from threadpoolctl import threadpool_info
except ImportError:  # the timings do not need it; the record does
    threadpool_info = None

SHAPES = [(512, 512, 512), (1024, 1024, 1024), (64, 512, 2048)]
SECONDS_PER_CASE = 3.0
MIN_RUNS = 20


def median_seconds(fn, seconds):
    for _ in range(5):
        fn()
    samples = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(samples) < MIN_RUNS:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return samples[len(samples) // 2], len(samples)


def blas_info():
    if threadpool_info is None:
        return None
    keys = ("internal_api", "version", "architecture", "num_threads")
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return [{k: p.get(k) for k in keys} for p in pools]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--seconds", type=float, default=SECONDS_PER_CASE)
    parser.add_argument("--only", help="one case, e.g. 64x512x2048:Bt")
    args = parser.parse_args()
    record = {
        "numpy": np.__version__,
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "blas": blas_info(),
        "results": [],
    }
    if not args.json:
        for key in ("numpy", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "blas"):
            print(f"{key}: {json.dumps(record[key])}")
    rng = np.random.default_rng(0)
    for m, k, n in SHAPES:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        b_t = np.ascontiguousarray(b.T).T  # same values, column-major: a transposed view
        out = np.empty((m, n), dtype=np.float32)
        flops = 2.0 * m * k * n
        for label, rhs in (("B", b), ("Bt", b_t)):
            if args.only and args.only != f"{m}x{k}x{n}:{label}":
                continue
            seconds, runs = median_seconds(lambda: np.matmul(a, rhs, out=out), args.seconds)
            gflops = flops / seconds / 1e9
            record["results"].append(
                {"shape": f"{m}x{k}x{n}", "rhs": label, "median_s": seconds, "runs": runs, "gflops": gflops}
            )
            if not args.json:
                print(
                    f"matmul {m}x{k}x{n} rhs={label}: median {seconds * 1e6:.1f} us "
                    f"over {runs} runs, {gflops:.1f} GFLOP/s"
                )
    if args.json:
        print(json.dumps(record))


if __name__ == "__main__":
    main()
