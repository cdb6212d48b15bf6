"""Seed 002: a one-layer LSTM extracting a clean signal from a noisy one, batch size 1, with
per-sample randomised signals and gradient clipping at 1.0. At the shipped learning rate the
loss reaches its best early and then climbs: the learning rate is too high for batch-1
sequential training."""

import math
import sys
from pathlib import Path

import torch
import yaml

import rescue


def make_signal(gen: torch.Generator, length: int, noise: float):
    """A random sum of two sinusoids (the clean target) plus Gaussian noise (the input)."""
    t = torch.arange(length, dtype=torch.float32)
    freq = 0.05 + 0.25 * torch.rand(2, generator=gen)
    phase = 2 * math.pi * torch.rand(2, generator=gen)
    amp = 0.3 + 0.4 * torch.rand(2, generator=gen)
    clean = (amp[:, None] * torch.sin(freq[:, None] * t + phase[:, None])).sum(0)
    noisy = clean + noise * torch.randn(length, generator=gen)
    return noisy[:, None, None], clean[:, None, None]


class Extractor(torch.nn.Module):
    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(1, hidden, num_layers=1)
        self.drop = torch.nn.Dropout(dropout) if dropout > 0 else torch.nn.Identity()
        self.head = torch.nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(self.drop(out))


def mse(model, data) -> float:
    with torch.no_grad():
        return sum(float(torch.mean((model(x) - y) ** 2)) for x, y in data) / len(data)


def train(config: dict) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    gen = torch.Generator().manual_seed(config["seed"])
    length, noise = config["length"], config["noise"]
    train_eval = [make_signal(gen, length, noise) for _ in range(config["eval_samples"])]
    test = [make_signal(gen, length, noise) for _ in range(config["eval_samples"])]
    model = Extractor(config["hidden"], config["dropout"])
    opt = torch.optim.SGD(
        model.parameters(),
        lr=config["lr"],
        momentum=config["momentum"],
        weight_decay=config["weight_decay"],
    )
    for _epoch in range(config["epochs"]):
        model.train()
        losses, norms = [], []
        for _ in range(config["samples_per_epoch"]):
            x, y = make_signal(gen, length, noise)  # per-sample randomisation, batch size 1
            loss = torch.mean((model(x) - y) ** 2)
            opt.zero_grad()
            loss.backward()
            norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), config["clip"])))
            opt.step()
            losses.append(float(loss))
        model.eval()
        rescue.report(
            loss=sum(losses) / len(losses),
            train_mse=mse(model, train_eval),
            test_mse=mse(model, test),
            grad_norm=sum(norms) / len(norms),
        )


if __name__ == "__main__":
    params = yaml.safe_load((Path(__file__).parent / "cfg.yaml").read_text())["params"]
    for arg in sys.argv[1:]:
        key, _, value = arg.partition("=")
        params[key] = yaml.safe_load(value)
    train(params)
