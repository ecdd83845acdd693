"""tapeloop's matmul next to OpenBLAS (numpy), alternating case by case so both see the same load.

For every shape and right-operand layout, each round runs benches/numpy_matmul.py on that case
(OpenBLAS, 2 threads, OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed) and then the same case of
`cargo bench --bench tensor -- matmul` (criterion; its median is read from
target/criterion/.../estimates.json). Before each pair it waits until the machine is idle
(other processes below 10% of the CPU over a second, for at most --max-wait seconds), because
OpenBLAS's spinning threads collapse when another process takes a core. The table gives the
median over the rounds that started idle of each side's GFLOP/s and of the per-round ratios.

    CARGO_TARGET_DIR=/work/target-tensor /work/venv/bin/python benches/compare_matmul.py --rounds 3

Timings on a shared 2-core VM are noisy: read the ratios, not the absolute numbers.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The machine counts as idle when other processes use less than this share of the CPU.
QUIET = 0.10
CASES = [
    (shape, rhs)
    for shape in ("512x512x512", "1024x1024x1024", "64x512x2048")
    for rhs in ("B", "Bt")
]


def busy_fraction(interval=1.0):
    def sample():
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]
        return idle, sum(fields)

    idle0, total0 = sample()
    time.sleep(interval)
    idle1, total1 = sample()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(max_wait):
    start = time.time()
    while True:
        busy = busy_fraction()
        if busy < QUIET or time.time() - start > max_wait:
            return busy


def run_numpy(python, case, seconds):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2")
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    out = subprocess.run(
        [python, str(ROOT / "benches" / "numpy_matmul.py"), "--json",
         "--seconds", str(seconds), "--only", f"{case[0]}:{case[1]}"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    record = json.loads(out)
    return record["results"][0]["gflops"], record["blas"]


def run_tapeloop(target_dir, case, seconds):
    shape, rhs = case
    subprocess.run(
        ["cargo", "bench", "--bench", "tensor", "--", f"^matmul/tapeloop_{rhs}/{shape}$",
         "--warm-up-time", "1", "--measurement-time", str(seconds)],
        cwd=ROOT, check=True, capture_output=True, text=True,
        env=dict(os.environ, CARGO_TARGET_DIR=str(target_dir)),
    )
    path = Path(target_dir) / "criterion" / "matmul" / f"tapeloop_{rhs}" / shape / "new" / "estimates.json"
    m, k, n = (int(x) for x in shape.split("x"))
    seconds = json.loads(path.read_text())["median"]["point_estimate"] * 1e-9
    return 2.0 * m * k * n / seconds / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per case and side")
    parser.add_argument("--max-wait", type=float, default=300.0, help="seconds to wait for idle")
    parser.add_argument("--python", default=sys.executable, help="the python that has numpy")
    parser.add_argument("--only", nargs="*", help="cases to run, e.g. 64x512x2048:Bt")
    parser.add_argument(
        "--target-dir", default=os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    )
    args = parser.parse_args()
    # Build once, outside the timed pairs.
    subprocess.run(["cargo", "bench", "--bench", "tensor", "--no-run"], cwd=ROOT, check=True,
                   env=dict(os.environ, CARGO_TARGET_DIR=args.target_dir), capture_output=True)
    cases = [c for c in CASES if not args.only or f"{c[0]}:{c[1]}" in args.only]
    rows = {case: [] for case in cases}
    blas = None
    for round_index in range(args.rounds):
        for case in cases:
            busy = wait_for_quiet(args.max_wait)
            peer, blas = run_numpy(args.python, case, args.seconds)
            ours = run_tapeloop(args.target_dir, case, args.seconds)
            rows[case].append((ours, peer, busy))
            print(
                f"round {round_index + 1}: {case[0]} {case[1]}: tapeloop {ours:.1f}, "
                f"OpenBLAS {peer:.1f} GFLOP/s (others busy {busy:.0%} before)",
                file=sys.stderr, flush=True,
            )
    print(f"OpenBLAS: {json.dumps(blas)}")
    # Pairs that started on a busy machine are dropped when quiet ones exist: OpenBLAS's
    # spinning threads lose an order of magnitude there, which says nothing about its kernels.
    print("| shape (m×k×n) | right operand | tapeloop GFLOP/s | OpenBLAS GFLOP/s | ratio | quiet pairs |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for (shape, rhs), triples in rows.items():
        quiet = [t for t in triples if t[2] < QUIET] or triples
        ours = statistics.median(t[0] for t in quiet)
        peer = statistics.median(t[1] for t in quiet)
        ratio = statistics.median(t[0] / t[1] for t in quiet)
        count = sum(t[2] < QUIET for t in triples)
        print(f"| {shape} | {rhs} | {ours:.0f} | {peer:.0f} | {ratio:.2f} | {count} of {len(triples)} |")


if __name__ == "__main__":
    main()
