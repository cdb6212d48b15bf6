"""Real torch runs under ``rescue.watch``, healthy and sick, recorded report by report.

One regression problem, y = tanh(x·w) for x ~ N(0, I_8), fitted by a small MLP; each run
changes one thing a person gets wrong: the inputs' scale, the initial weights' scale, or the
learning rate.
"""

from __future__ import annotations

import torch

import rescue
from rescue.worker.reporting import install_sink


class Recorder:
    """A report sink that keeps every report."""

    def __init__(self) -> None:
        self.reports: list[dict] = []

    def report(self, metrics, checkpoint) -> None:
        self.reports.append(metrics)

    def get_checkpoint(self):
        return None


def regression_run(
    *,
    input_scale: float = 1.0,
    activation: type[torch.nn.Module] = torch.nn.ReLU,
    init_gain: float = 1.0,
    optimizer: str = "adam",
    lr: float = 1e-3,
    steps: int = 300,
    seed: int = 0,
    watch: bool = True,
    every: int = 10,
    report_every: int = 10,
) -> list[dict]:
    torch.manual_seed(seed)
    x = torch.randn(512, 8)
    y = torch.tanh(x @ torch.randn(8, 1))
    x = x * input_scale
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 64),
        activation(),
        torch.nn.Linear(64, 64),
        activation(),
        torch.nn.Linear(64, 1),
    )
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(init_gain)
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    recorder = Recorder()
    previous = install_sink(recorder)
    watcher = rescue.watch(model, opt, every=every) if watch else None
    try:
        for step in range(steps):
            idx = torch.randint(0, 512, (64,))
            loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % report_every == report_every - 1:
                with torch.no_grad():
                    full = torch.nn.functional.mse_loss(model(x), y).item()
                rescue.report(loss=full)
    finally:
        if watcher is not None:
            watcher.close()
        install_sink(previous)
    return recorder.reports
