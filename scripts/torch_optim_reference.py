"""Reference values for tapeloop's optimizers, schedules and gradient clipping, from PyTorch.

Run once with any recent PyTorch (the numbers in crates/rnn/tests/optim_reference.rs came from
the version this prints):

    python3 scripts/torch_optim_reference.py

Every optimizer case minimises the same loss on the same starting point, in float64:

    w0   = [0.5, -1.5, 2.0, -0.25]
    c    = [1.0, -2.0, 0.5, 3.0]
    loss = sum(w * c) + sum(w ** 2)        so   grad = c + 2 w

and prints w after each of five steps with full precision (repr of float64).
"""

import torch

torch.set_default_dtype(torch.float64)

W0 = [0.5, -1.5, 2.0, -0.25]
C = [1.0, -2.0, 0.5, 3.0]
STEPS = 5

OPTIMIZER_CASES = [
    ("sgd", lambda p: torch.optim.SGD(p, lr=0.1)),
    ("sgd_momentum", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    ("sgd_dampening", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3)),
    ("sgd_nesterov", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    (
        "sgd_weight_decay",
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5, weight_decay=0.1),
    ),
    ("adam", lambda p: torch.optim.Adam(p, lr=0.1)),
    (
        "adam_weight_decay_amsgrad",
        lambda p: torch.optim.Adam(
            p, lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True
        ),
    ),
    ("adamw", lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.1)),
    ("rmsprop", lambda p: torch.optim.RMSprop(p, lr=0.01)),
    (
        "rmsprop_momentum_centered",
        lambda p: torch.optim.RMSprop(
            p, lr=0.01, alpha=0.9, eps=1e-6, momentum=0.9, centered=True, weight_decay=0.1
        ),
    ),
]


def fmt(values):
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def optimizer_cases():
    c = torch.tensor(C)
    for name, make in OPTIMIZER_CASES:
        w = torch.tensor(W0, requires_grad=True)
        optimizer = make([w])
        print(f"// {name}")
        for _ in range(STEPS):
            optimizer.zero_grad()
            loss = (w * c).sum() + (w**2).sum()
            loss.backward()
            optimizer.step()
            print(f"    {fmt(w.detach().tolist())},")


def schedule_cases():
    cases = [
        ("step", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
        ("exponential", lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9)),
        (
            "cosine",
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8, eta_min=0.01),
        ),
    ]
    for name, make in cases:
        w = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.SGD([w], lr=0.1)
        scheduler = make(optimizer)
        lrs = []
        for _ in range(10):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        print(f"// schedule {name}: learning rate at steps 0..10")
        print(f"    {fmt(lrs)},")


def clip_cases():
    for max_norm in [1.0, 100.0]:
        a = torch.zeros(2, 2, requires_grad=True)
        b = torch.zeros(3, requires_grad=True)
        a.grad = torch.tensor([[3.0, -4.0], [1.0, 2.0]])
        b.grad = torch.tensor([0.5, -6.0, 2.5])
        norm = torch.nn.utils.clip_grad_norm_([a, b], max_norm)
        print(f"// clip_grad_norm_ max_norm={max_norm}: norm, then a.grad, b.grad")
        print(f"    {repr(float(norm))},")
        print(f"    {fmt(a.grad.flatten().tolist())},")
        print(f"    {fmt(b.grad.tolist())},")


if __name__ == "__main__":
    print(f"// PyTorch {torch.__version__}, float64; w0 = {W0}, c = {C}")
    optimizer_cases()
    schedule_cases()
    clip_cases()
