#!/usr/bin/env python3
"""PyTorch's side of `tapeloop bench`: one training step of a recurrent layer, timed the same way.

A benchmark peer script, never a dependency of the Rust code: it needs torch (e.g. the venv at
/work/venv-torch). For each configuration and cell it builds PyTorch's layer with its default
initialization, in float32 on the CPU with `torch.set_num_threads(2)`, and times

    x = torch.randn(T, B, I)                  # no gradient, as in tapeloop bench
    out = layer(x)                            # forward alone (the autograd graph is recorded)
    loss = (out * R).sum(); loss.backward()   # forward + backward, timed as a whole

after untimed warm-up iterations. Each timed iteration runs the forward pass alone once and the
whole step once, exactly as src/commands/bench.rs does, and prints one JSON line with the keys
`tapeloop bench --json` prints (median and minimum milliseconds, and the GFLOP/s of the step's
matrix multiplies by the same FLOP count).

Cells: `rnn` (nn.RNN, tanh), `lstm` (nn.LSTM), `gru` (nn.GRU) and `lstm-custom`: an LSTM cell
written in Python with torch ops and a Python loop over time, its input projection precomputed
once as one matrix multiply — the same program as tapeloop's `--custom` cell.

    /work/venv-torch/bin/python benches/torch_reference.py                 # every config and cell
    /work/venv-torch/bin/python benches/torch_reference.py --config small --cell lstm
    /work/venv-torch/bin/python benches/torch_reference.py --seq-len 50 --batch 32 \\
        --input 128 --hidden 128 --cell gru --warmup 5 --iterations 20

With `--report-rss`, the JSON line also has the process's VmHWM (peak resident set) and VmRSS
in KiB after the warm-up and after the timed iterations, read from /proc/self/status.
"""

import argparse
import json
import math
import statistics
import time

import torch
from torch import nn

# The configurations of the issue "Performance: a training step faster than PyTorch on CPU".
CONFIGS = {
    "tiny": dict(seq_len=20, batch=1, input=16, hidden=16),
    "small": dict(seq_len=50, batch=32, input=128, hidden=128),
    "medium": dict(seq_len=100, batch=64, input=512, hidden=512),
    "long": dict(seq_len=1000, batch=16, input=128, hidden=128),
}
CELLS = ["rnn", "lstm", "gru", "lstm-custom"]
GATES = {"rnn": 1, "lstm": 4, "gru": 3, "lstm-custom": 4}


class CustomLstm(nn.Module):
    """An LSTM cell from torch ops, run by a Python loop: tapeloop's `--custom` cell."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)  # PyTorch's default for recurrent layers
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x):
        steps, batch, features = x.shape
        # One matrix multiply for every step's input projection.
        projected = (x.reshape(steps * batch, features) @ self.weight_ih.t() + self.bias_ih).reshape(
            steps, batch, 4 * self.hidden_size
        )
        h = x.new_zeros(batch, self.hidden_size)
        c = x.new_zeros(batch, self.hidden_size)
        outputs = []
        for t in range(steps):
            gates = projected[t] + h @ self.weight_hh.t() + self.bias_hh
            i, f, g, o = gates.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs)


def make_layer(cell, input_size, hidden_size):
    if cell == "rnn":
        return nn.RNN(input_size, hidden_size, nonlinearity="tanh")
    if cell == "lstm":
        return nn.LSTM(input_size, hidden_size)
    if cell == "gru":
        return nn.GRU(input_size, hidden_size)
    if cell == "lstm-custom":
        return CustomLstm(input_size, hidden_size)
    raise ValueError(f"unknown cell {cell}")


def step_flops(cell, seq_len, batch, input_size, hidden_size):
    """The same count as `step_flops` in src/commands/bench.rs (one layer)."""
    g = GATES[cell]
    projection = 2.0 * seq_len * batch * input_size * g * hidden_size
    recurrent = 2.0 * seq_len * batch * hidden_size * g * hidden_size
    return 2.0 * (projection + recurrent) + recurrent


def rss_kib():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0])
    return fields


def measure(cell, seq_len, batch, input_size, hidden_size, warmup, iterations, report_rss=False):
    torch.manual_seed(0)
    layer = make_layer(cell, input_size, hidden_size)
    x = torch.randn(seq_len, batch, input_size)
    r = torch.randn(seq_len, batch, hidden_size)

    def forward():
        out = layer(x)
        return out[0] if isinstance(out, tuple) else out

    def step():
        loss = (forward() * r).sum()
        loss.backward()

    for _ in range(warmup):
        step()
    rss_after_warmup = rss_kib() if report_rss else None
    forward_times, step_times = [], []
    for _ in range(max(1, iterations)):
        start = time.perf_counter()
        out = forward()
        forward_times.append((time.perf_counter() - start) * 1e3)
        del out
        start = time.perf_counter()
        step()
        step_times.append((time.perf_counter() - start) * 1e3)
    flops = step_flops(cell, seq_len, batch, input_size, hidden_size)
    step_median = statistics.median(step_times)
    result = {
        "impl": "pytorch",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cell": cell,
        "seq_len": seq_len,
        "batch": batch,
        "input": input_size,
        "hidden": hidden_size,
        "layers": 1,
        "iterations": iterations,
        "forward_median_ms": statistics.median(forward_times),
        "forward_min_ms": min(forward_times),
        "step_median_ms": step_median,
        "step_min_ms": min(step_times),
        "gflops": flops / (step_median * 1e-3) / 1e9,
    }
    if report_rss:
        after = rss_kib()
        result.update(
            {
                "vm_hwm_after_warmup_kib": rss_after_warmup["VmHWM"],
                "vm_rss_after_warmup_kib": rss_after_warmup["VmRSS"],
                "vm_hwm_kib": after["VmHWM"],
                "vm_rss_kib": after["VmRSS"],
            }
        )
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=[*CONFIGS, "all"], default="all")
    parser.add_argument("--cell", choices=[*CELLS, "all"], default="all")
    parser.add_argument("--seq-len", type=int, help="overrides the configuration's T")
    parser.add_argument("--batch", type=int, help="overrides the configuration's B")
    parser.add_argument("--input", type=int, help="overrides the configuration's I")
    parser.add_argument("--hidden", type=int, help="overrides the configuration's H")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--report-rss", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    overrides = {k: getattr(args, k) for k in ("seq_len", "batch", "input", "hidden") if getattr(args, k)}
    if overrides and args.config == "all" and len(overrides) < 4:
        parser.error("give all of --seq-len --batch --input --hidden, or a --config to override")
    configs = list(CONFIGS) if args.config == "all" else [args.config]
    if overrides and args.config == "all":
        configs = [None]
    cells = CELLS if args.cell == "all" else [args.cell]
    for name in configs:
        shape = dict(CONFIGS[name]) if name else {}
        shape.update(overrides)
        for cell in cells:
            result = measure(
                cell,
                shape["seq_len"],
                shape["batch"],
                shape["input"],
                shape["hidden"],
                args.warmup,
                args.iterations,
                args.report_rss,
            )
            if name:
                result["config"] = name
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
