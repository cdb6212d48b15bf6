"""Real torch runs trained on a representative or an unrepresentative sample of their data.

A small MLP fits y = sin(2x) + x/2 for x ~ N(0, 1.5^2). ``fresh`` draws a new batch from that
distribution at every step; ``slice`` keeps training on one batch drawn around one point (a
training set that was sampled once from a narrow region, as when parameters and states are
redrawn too rarely, seed 000). The training loss reported is the mean over the interval, the
held-out loss is measured on 512 points from the full distribution.
"""

from __future__ import annotations

import torch


def regression(sampling: str, seed: int = 0, steps: int = 800, every: int = 10) -> list[dict]:
    if sampling not in ("fresh", "slice"):
        raise ValueError(f"sampling must be 'fresh' or 'slice', got {sampling!r}")
    torch.manual_seed(seed)

    def target(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(2 * x) + 0.5 * x

    x_val = 1.5 * torch.randn(512, 1)
    model = torch.nn.Sequential(
        torch.nn.Linear(1, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 1),
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = 1.5 * torch.randn(1) + 0.5 * torch.randn(64, 1)
    reports, seen = [], []
    for step in range(steps):
        if sampling == "fresh":
            x = 1.5 * torch.randn(64, 1)
        loss = torch.nn.functional.mse_loss(model(x), target(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen.append(loss.item())
        if step % every == every - 1:
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(model(x_val), target(x_val)).item()
            reports.append({"train_loss": sum(seen) / len(seen), "val_loss": val})
            seen.clear()
    return reports
