#!/usr/bin/env python3
"""PyTorch's side of `tapeloop flow`: how fast ∂L/∂h_k vanishes with the lag T − k.

A cross-check, never a dependency of the Rust code: it needs torch (e.g. the venv at
/work/venv-torch). It computes the quantity src/commands/flow.rs computes, with PyTorch's own
layers and default initialization, in float32:

- inputs: the adding task (src/tasks/adding.rs): T steps of two channels, values from U[0, 1]
  and a marker channel with exactly one 1 in each half;
- an `nn.RNN` (tanh), `nn.LSTM` or `nn.GRU` with 2 inputs and `--hidden` units, run step by step
  (the layer called on one step at a time, carrying its state) so that each step's h_k (the
  returned state the next step reads) is a tensor of the graph whose gradient is retained;
- L = Σ_b r · h_T(b) for a fixed random vector r ~ N(0, I);
- per-sequence norms ‖∂L/∂h_k(b)‖, averaged over the batch and over `--samples` batches, and the
  ratio ‖∂L/∂h_{T−k}‖ / ‖∂L/∂h_T‖ at k = 10, 50 and T − 1.

`--forget-bias v` sets the LSTM's forget-gate block of b_ih to v and of b_hh to 0, as
`tapeloop flow --forget-bias v` does. The weights are PyTorch's random draws, not tapeloop's, so
the numbers agree in order of magnitude, not digit for digit; `--seeds N` repeats the study for
N initializations to show how much they vary by seed alone.

    /work/venv-torch/bin/python scripts/torch_flow.py --samples 4
    /work/venv-torch/bin/python scripts/torch_flow.py --cells lstm --forget-bias 3 --seeds 5
"""

import argparse
import json
import statistics

import torch
from torch import nn


def adding_batch(steps, batch, generator):
    """[T, B, 2]: values U[0, 1], and one marker in each half."""
    half = steps // 2
    values = torch.rand(steps, batch, generator=generator)
    markers = torch.zeros(steps, batch)
    first = torch.randint(0, half, (batch,), generator=generator)
    second = torch.randint(half, steps, (batch,), generator=generator)
    columns = torch.arange(batch)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    return torch.stack([values, markers], dim=2)


def make_layer(cell, hidden, forget_bias):
    if cell == "rnn":
        layer = nn.RNN(2, hidden, nonlinearity="tanh")
    elif cell == "lstm":
        layer = nn.LSTM(2, hidden)
        if forget_bias is not None:
            with torch.no_grad():
                layer.bias_ih_l0[hidden : 2 * hidden].fill_(forget_bias)
                layer.bias_hh_l0[hidden : 2 * hidden].zero_()
    elif cell == "gru":
        layer = nn.GRU(2, hidden)
    else:
        raise ValueError(f"unknown cell {cell}")
    return layer


def gradient_norms(cell, steps, batch, hidden, samples, seed, forget_bias):
    """‖∂L/∂h_k‖ for k = 0..T−1, per-sequence norms averaged over the batch and the batches."""
    torch.manual_seed(seed)
    layer = make_layer(cell, hidden, forget_bias if cell == "lstm" else None)
    generator = torch.Generator().manual_seed(seed + 1)
    readout = torch.randn(hidden, generator=generator)
    totals = torch.zeros(steps, dtype=torch.float64)
    for _ in range(samples):
        x = adding_batch(steps, batch, generator)
        state = None
        hs = []
        for t in range(steps):
            # The next step reads the returned state, not the output: retain h_n's gradient.
            _, state = layer(x[t : t + 1], state)
            h = state[0] if cell == "lstm" else state  # [1, B, H]
            h.retain_grad()
            hs.append(h)
        loss = (hs[-1] * readout).sum()
        loss.backward()
        for k, h in enumerate(hs):
            totals[k] += h.grad[0].double().norm(dim=1).mean().item() / samples
    return totals.tolist()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", default="rnn,lstm,gru")
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--forget-bias", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="repeat for this many initializations")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="one JSON line per cell and seed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = args.seq_len
    lags = [lag for lag in (10, 50, steps - 1) if lag < steps]

    print(
        f"PyTorch {torch.__version__} gradient flow: T={steps} batch={args.batch} hidden={args.hidden} "
        f"forget-bias={'default' if args.forget_bias is None else args.forget_bias} samples={args.samples} "
        f"(L depends only on h_T)"
    )
    print(f"{'cell':<6} {'seed':>4} " + " ".join(f"{'ratio k=' + str(lag):>14}" for lag in lags))
    for cell in args.cells.split(","):
        by_lag = {lag: [] for lag in lags}
        for seed in range(args.seed, args.seed + args.seeds):
            norms = gradient_norms(cell, steps, args.batch, args.hidden, args.samples, seed, args.forget_bias)
            last = norms[steps - 1]
            ratios = {lag: norms[steps - 1 - lag] / last for lag in lags}
            for lag in lags:
                by_lag[lag].append(ratios[lag])
            if args.json:
                print(json.dumps({"cell": cell, "seed": seed, "forget_bias": args.forget_bias,
                                  **{f"ratio_k{lag}": ratios[lag] for lag in lags}}))
            else:
                print(f"{cell:<6} {seed:>4} " + " ".join(f"{ratios[lag]:>14.3e}" for lag in lags))
        if args.seeds > 1:
            print(f"{cell:<6} {'med':>4} " + " ".join(f"{statistics.median(by_lag[lag]):>14.3e}" for lag in lags))


if __name__ == "__main__":
    main()
