"""Cost of ``rescue.watch`` at its default interval: the same training loop with and without
it, alternating in one process, medians of repeated runs.

    python bench/watch_overhead.py [--repeats 5]

Loops: an MLP regression (batch 64, Adam) and an LSTM trained one sequence at a time (batch 1,
SGD with momentum, as in examples/lstm_divergence), where per-step costs weigh most.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import torch

import rescue
from rescue.worker.reporting import install_sink


class Discard:
    def report(self, metrics, checkpoint) -> None:
        pass

    def get_checkpoint(self, weights_only=True):
        return None


def mlp_loop(watch: bool, steps: int = 3000) -> float:
    torch.manual_seed(0)
    x = torch.randn(512, 8)
    y = torch.tanh(x.sum(1, keepdim=True))
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 1),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def batch():
        idx = torch.randint(0, 512, (64,))
        return x[idx], y[idx]

    return _train(model, opt, watch, steps, batch)


class Lstm(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm, self.head = torch.nn.LSTM(1, 32, batch_first=True), torch.nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0])


def lstm_loop(watch: bool, steps: int = 1500) -> float:
    torch.manual_seed(0)
    model = Lstm()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    t = torch.linspace(0, 6.28, 40).reshape(1, 40, 1)

    def batch():  # recover a sine from a noisy copy, one sequence per step
        return torch.sin(t) + 0.1 * torch.randn_like(t), torch.sin(t)

    return _train(model, opt, watch, steps, batch)


def _train(model, opt, watch: bool, steps: int, batch) -> float:
    install_sink(Discard())
    watcher = rescue.watch(model, opt) if watch else None
    started = time.perf_counter()
    for step in range(steps):
        x, target = batch()
        loss = torch.nn.functional.mse_loss(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 9:  # a report every 10 steps; one in five carries health metrics
            rescue.report(loss=loss.item())
    elapsed = time.perf_counter() - started
    if watcher is not None:
        watcher.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    loops = (("MLP, batch 64, 3000 steps", mlp_loop), ("LSTM, batch 1, 1500 steps", lstm_loop))
    for name, loop in loops:
        loop(False)  # warm-up
        times = {False: [], True: []}
        for _ in range(args.repeats):
            for watched in (False, True):
                times[watched].append(loop(watched))
        plain, watched = statistics.median(times[False]), statistics.median(times[True])
        rows.append(f"| {name} | {plain:.2f} s | {watched:.2f} s | {watched / plain:.3f} |")
    text = "\n".join(
        [
            "# rescue.watch overhead (default interval: one measured step in 50)",
            "",
            f"{date.today()}, {platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} torch thread, torch {torch.__version__}, "
            f"median of {args.repeats} alternating repeats; `python bench/watch_overhead.py`",
            "",
            "| loop | without watch | with watch | ratio |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    out = Path(__file__).parent / "results" / "watch_overhead.md"
    out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
