#!/usr/bin/env python3
"""Writes PyTorch reference cases for the `rnn` crate's parity tests.

A reference generator, never a dependency of the Rust code: it needs torch, numpy and
safetensors (e.g. in a venv outside the repository) and writes files in the format of
crates/rnn/tests/fixtures/torch/README.md:

    /work/venv-torch/bin/python scripts/torch_fixtures.py crates/rnn/tests/fixtures/torch

With `--check`, nothing is written: every case is regenerated and compared with the file
already in the directory (bit for bit).

Each case is one `nn.RNN` / `nn.LSTM` / `nn.GRU` in float64 with a fixed seed, run forward and
backward on

    loss = sum(output * r_output) + sum(h_n * r_h_n) [+ sum(c_n * r_c_n)]

A variable-length case (one with `lengths`) runs the padded batch through
`pack_padded_sequence(input, lengths, enforce_sorted=False)` and pads the result back with
zeros (`pad_packed_sequence(..., total_length=T)`); its padding holds random values, which must
not affect anything (their gradient is zero).

Before writing, every case is checked three ways:
  1. a second run from the stored tensors (fresh module, parameters loaded from the dict)
     reproduces every stored tensor exactly;
  2. for variable-length cases, each sequence run alone, unpadded and unpacked, gives the same
     output (and zeros past its length) and the same final states, to 1e-12;
  3. the written file, read back, equals what was stored.
"""

import argparse
import math
import os
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

DTYPE = torch.float64

# T <= 7, B <= 4, H <= 6 keeps every file small. Lengths are unsorted, each variable-length
# batch has a full-length sequence and a length-1 sequence.
CASES = [
    dict(
        name="rnn_tanh_varlen",
        seed=101,
        mode="rnn",
        input_size=4,
        hidden_size=5,
        seq_len=6,
        batch=4,
        nonlinearity="tanh",
        lengths=[3, 6, 1, 4],
    ),
    dict(
        name="lstm_2layer_bidirectional_varlen",
        seed=102,
        mode="lstm",
        input_size=3,
        hidden_size=4,
        seq_len=6,
        batch=4,
        num_layers=2,
        bidirectional=True,
        lengths=[4, 1, 6, 3],
    ),
    dict(
        name="gru_bidirectional_varlen",
        seed=103,
        mode="gru",
        input_size=3,
        hidden_size=5,
        seq_len=7,
        batch=4,
        bidirectional=True,
        # Two equal lengths: the sort inside pack_padded_sequence has a tie.
        lengths=[5, 1, 7, 5],
    ),
    dict(
        name="lstm_batch_first_varlen",
        seed=104,
        mode="lstm",
        input_size=4,
        hidden_size=5,
        seq_len=6,
        batch=3,
        batch_first=True,
        lengths=[2, 6, 1],
    ),
    dict(
        name="lstm_proj_2layer_bidirectional",
        seed=105,
        mode="lstm",
        input_size=4,
        hidden_size=6,
        proj_size=3,
        seq_len=5,
        batch=2,
        num_layers=2,
        bidirectional=True,
    ),
    dict(
        name="lstm_proj_bidirectional_varlen",
        seed=106,
        mode="lstm",
        input_size=3,
        hidden_size=5,
        proj_size=2,
        seq_len=6,
        batch=4,
        bidirectional=True,
        lengths=[6, 2, 1, 5],
    ),
]

DEFAULTS = dict(
    num_layers=1,
    bidirectional=False,
    batch_first=False,
    bias=True,
    nonlinearity="",
    proj_size=0,
    lengths=None,
)


def full(case):
    c = dict(DEFAULTS)
    c.update(case)
    if c["mode"] == "rnn" and not c["nonlinearity"]:
        c["nonlinearity"] = "tanh"
    return c


def build_module(c):
    common = dict(
        input_size=c["input_size"],
        hidden_size=c["hidden_size"],
        num_layers=c["num_layers"],
        bias=c["bias"],
        batch_first=c["batch_first"],
        bidirectional=c["bidirectional"],
    )
    if c["mode"] == "rnn":
        m = torch.nn.RNN(nonlinearity=c["nonlinearity"], **common)
    elif c["mode"] == "lstm":
        m = torch.nn.LSTM(proj_size=c["proj_size"], **common)
    elif c["mode"] == "gru":
        m = torch.nn.GRU(**common)
    else:
        raise ValueError(c["mode"])
    return m.to(DTYPE)


def state_names(c):
    return ["h", "c"] if c["mode"] == "lstm" else ["h"]


def run(c, m, x, states, lengths):
    """Forward: returns (output, [h_n, (c_n)]), output zero-padded to T for variable lengths."""
    hx = tuple(states) if c["mode"] == "lstm" else states[0]
    if lengths is None:
        out, hn = m(x, hx)
    else:
        packed = pack_padded_sequence(
            x, lengths, batch_first=c["batch_first"], enforce_sorted=False
        )
        out_packed, hn = m(packed, hx)
        out, out_lengths = pad_packed_sequence(
            out_packed,
            batch_first=c["batch_first"],
            padding_value=0.0,
            total_length=c["seq_len"],
        )
        assert torch.equal(out_lengths, lengths), (out_lengths, lengths)
    finals = list(hn) if c["mode"] == "lstm" else [hn]
    return out, finals


def forward_backward(c, m, x, states, lengths, weights):
    """Runs the case and returns {name: tensor} of results, loss and gradients."""
    x = x.detach().clone().requires_grad_(True)
    states = [s.detach().clone().requires_grad_(True) for s in states]
    m.zero_grad(set_to_none=True)
    out, finals = run(c, m, x, states, lengths)
    names = ["output"] + [f"{s}_n" for s in state_names(c)]
    values = [out] + finals
    loss = sum((v * weights[f"r_{n}"]).sum() for n, v in zip(names, values))
    loss.backward()
    result = {n: v.detach().clone() for n, v in zip(names, values)}
    result["loss"] = loss.detach().reshape(1).clone()
    grads = {"input": x.grad}
    for s, st in zip(state_names(c), states):
        grads[f"{s}0"] = st.grad
    for pname, p in m.named_parameters():
        grads[pname] = p.grad
    for gname, g in grads.items():
        if g is None:
            raise RuntimeError(f"{c['name']}: no gradient for {gname}")
        result[f"grad.{gname}"] = g.detach().clone()
    return result


def make_case(case):
    c = full(case)
    torch.manual_seed(c["seed"])
    m = build_module(c)
    T, B = c["seq_len"], c["batch"]
    L, D = c["num_layers"], 2 if c["bidirectional"] else 1
    H = c["hidden_size"]
    H_out = c["proj_size"] or H
    x_shape = (B, T, c["input_size"]) if c["batch_first"] else (T, B, c["input_size"])
    x = torch.randn(x_shape, dtype=DTYPE)
    states = [0.5 * torch.randn(L * D, B, H_out, dtype=DTYPE)]
    if c["mode"] == "lstm":
        states.append(0.5 * torch.randn(L * D, B, H, dtype=DTYPE))
    lengths = None
    if c["lengths"] is not None:
        lengths = torch.tensor(c["lengths"], dtype=torch.int64)
        assert lengths.shape == (B,)
        assert int(lengths.max()) == T and int(lengths.min()) == 1
        assert not torch.equal(lengths, lengths.sort(descending=True).values), "unsorted"
    # Loss weights shaped like the results (one dry run gives the shapes).
    with torch.no_grad():
        out, finals = run(c, m, x, states, lengths)
    weights = {"r_output": torch.randn(out.shape, dtype=DTYPE)}
    for s, f in zip(state_names(c), finals):
        weights[f"r_{s}_n"] = torch.randn(f.shape, dtype=DTYPE)

    tensors = {}
    for pname, p in m.named_parameters():
        tensors[pname] = p.detach().clone()
    tensors["input"] = x
    for s, st in zip(state_names(c), states):
        tensors[f"{s}0"] = st
    tensors.update(weights)
    if lengths is not None:
        tensors["lengths"] = lengths
    tensors.update(forward_backward(c, m, x, states, lengths, weights))

    loss_formula = "+".join(
        ["sum(output*r_output)"] + [f"sum({s}_n*r_{s}_n)" for s in state_names(c)]
    )
    metadata = {
        "mode": c["mode"],
        "input_size": str(c["input_size"]),
        "hidden_size": str(H),
        "seq_len": str(T),
        "batch": str(B),
        "num_layers": str(L),
        "bidirectional": "true" if c["bidirectional"] else "false",
        "batch_first": "true" if c["batch_first"] else "false",
        "bias": "true" if c["bias"] else "false",
        "nonlinearity": c["nonlinearity"],
        "proj_size": str(c["proj_size"]),
        "dtype": "float64",
        "loss": loss_formula,
        "torch_version": torch.__version__,
    }
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    return c, tensors, metadata


def rerun_from_tensors(c, t):
    """Check 1: a fresh module loaded from the stored tensors reproduces every stored tensor."""
    m = build_module(c)
    with torch.no_grad():
        for pname, p in m.named_parameters():
            p.copy_(t[pname])
    states = [t[f"{s}0"] for s in state_names(c)]
    weights = {k: v for k, v in t.items() if k.startswith("r_")}
    again = forward_backward(c, m, t["input"], states, t.get("lengths"), weights)
    for k, v in again.items():
        if not torch.equal(v, t[k]):
            diff = (v - t[k]).abs().max().item()
            raise AssertionError(f"{c['name']}: re-run differs on {k} (max abs {diff:.3e})")
    expected = set(again) | {k for k in t if not k.startswith("grad.") and k not in again}
    assert expected == set(t), set(t) ^ expected
    # Every parameter has a gradient, and every stored gradient is for a known name.
    params = {n for n, _ in m.named_parameters()}
    grads = {k[len("grad.") :] for k in t if k.startswith("grad.")}
    assert grads == params | {"input"} | {f"{s}0" for s in state_names(c)}, grads


def check_per_sequence(c, t):
    """Check 2 (variable-length only): each sequence alone, unpacked and unpadded, agrees."""
    if "lengths" not in t:
        return 0.0
    m = build_module(c)
    with torch.no_grad():
        for pname, p in m.named_parameters():
            p.copy_(t[pname])
    worst = 0.0
    time_dim, batch_dim = (1, 0) if c["batch_first"] else (0, 1)
    with torch.no_grad():
        for b, length in enumerate(t["lengths"].tolist()):
            xb = t["input"].narrow(batch_dim, b, 1).narrow(time_dim, 0, length)
            states = [t[f"{s}0"][:, b : b + 1] for s in state_names(c)]
            out, finals = run(c, m, xb, states, None)
            ref = t["output"].narrow(batch_dim, b, 1)
            worst = max(worst, (out - ref.narrow(time_dim, 0, length)).abs().max().item())
            tail = ref.narrow(time_dim, length, c["seq_len"] - length)
            assert tail.numel() == 0 or torch.count_nonzero(tail) == 0, "padding not zero"
            for s, f in zip(state_names(c), finals):
                worst = max(worst, (f - t[f"{s}_n"][:, b : b + 1]).abs().max().item())
            # Padded input steps get no gradient.
            gtail = t["grad.input"].narrow(batch_dim, b, 1).narrow(
                time_dim, length, c["seq_len"] - length
            )
            assert gtail.numel() == 0 or torch.count_nonzero(gtail) == 0, "padding has grad"
    assert worst < 1e-12, f"{c['name']}: per-sequence runs differ by {worst:.3e}"
    return worst


def write_checked(path, tensors, metadata):
    """Check 3: writes through a temporary file and compares what reads back."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".safetensors", dir=directory)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        back = load_file(tmp)
        assert set(back) == set(tensors)
        for k, v in tensors.items():
            assert back[k].dtype == v.dtype and torch.equal(back[k], v), k
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def compare_with_file(path, tensors, metadata):
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        stored_meta = f.metadata()
        stored = {k: f.get_tensor(k) for k in f.keys()}
    problems = []
    for k in sorted(set(metadata) | set(stored_meta)):
        if k == "torch_version":
            continue
        if metadata.get(k) != stored_meta.get(k):
            problems.append(f"metadata {k}: {stored_meta.get(k)!r} != {metadata.get(k)!r}")
    for k in sorted(set(tensors) | set(stored)):
        if k not in tensors or k not in stored:
            problems.append(f"tensor {k} only on one side")
        elif not torch.equal(tensors[k], stored[k]):
            problems.append(f"tensor {k} differs")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="e.g. crates/rnn/tests/fixtures/torch")
    parser.add_argument(
        "--check", action="store_true", help="compare with the files there; write nothing"
    )
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}")
    failed = False
    for case in CASES:
        c, tensors, metadata = make_case(case)
        rerun_from_tensors(c, tensors)
        worst = check_per_sequence(c, tensors)
        path = os.path.join(args.out_dir, f"{c['name']}.safetensors")
        if args.check:
            problems = compare_with_file(path, tensors, metadata)
            failed |= bool(problems)
            status = "ok" if not problems else "DIFFERS: " + "; ".join(problems)
            print(f"{path}: {status}")
            continue
        write_checked(path, tensors, metadata)
        loss = tensors["loss"].item()
        assert math.isfinite(loss)
        extra = f", per-sequence max diff {worst:.1e}" if "lengths" in tensors else ""
        print(
            f"wrote {path} ({os.path.getsize(path)} bytes, {len(tensors)} tensors, "
            f"loss {loss:.6f}{extra})"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
