"""Seed 001: a deep Markov (regime-switching) model with 4 regimes on two return series whose
volatilities differ 12x, trained as a VAE: a per-step regime posterior, a learned Markov
transition prior, one Gaussian emission per regime, loss = reconstruction NLL + beta * KL.

The data come from a known 4-regime Markov process (calm, neutral, volatile, panic), so the
inferred regimes can be scored against the truth. ``input_norm`` says what the model sees and
reconstructs: ``none`` (raw returns, the seed's first attempt), ``batch`` (each series
standardised by the current batch) or ``running`` (each series standardised by running
statistics of all training batches so far).

The emission scales start spread around unit scale, the scale of standardised data. On raw
returns (std 0.004-0.4) every regime's emission is far too wide, so the narrowest one explains
every step best and takes the whole posterior; only that regime's emission then gets data to
learn from, and the model stays collapsed onto one regime.
"""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import torch
import yaml

import rescue

REGIMES = ("calm", "neutral", "volatile", "panic")
# Daily return mean and volatility per regime of the traditional series; the tokenized series
# has the same regimes at 12x the volatility.
MEAN = torch.tensor([0.0005, 0.0002, -0.0005, -0.002])
VOL = torch.tensor([0.004, 0.008, 0.016, 0.035])
TOKEN_VOL_RATIO = 12.0
# Persistent regimes; panic is rare and short-lived, calm the most common.
TRANSITION = torch.tensor(
    [
        [0.97, 0.02, 0.01, 0.00],
        [0.03, 0.94, 0.025, 0.005],
        [0.01, 0.05, 0.91, 0.03],
        [0.00, 0.02, 0.08, 0.90],
    ]
)


def simulate(length: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Regime path (length,) and returns (length, 2): traditional and tokenized series."""
    regimes = torch.empty(length, dtype=torch.long)
    state = 0
    for t in range(length):
        regimes[t] = state
        state = int(torch.multinomial(TRANSITION[state], 1, generator=gen))
    scale = torch.tensor([1.0, TOKEN_VOL_RATIO])
    noise = torch.randn(length, 2, generator=gen)
    returns = MEAN[regimes, None] * scale + VOL[regimes, None] * scale * noise
    return regimes, returns


class InputNorm(torch.nn.Module):
    """Per-series standardisation: none, by the batch's statistics, or by running statistics."""

    def __init__(self, mode: str, series: int) -> None:
        super().__init__()
        if mode not in ("none", "batch", "running"):
            raise ValueError(f"input_norm must be none, batch or running, got {mode!r}")
        self.mode = mode
        self.register_buffer("count", torch.zeros(()))
        self.register_buffer("mean", torch.zeros(series))
        self.register_buffer("sq", torch.ones(series))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, time, series)
        if self.mode == "none":
            return x
        flat = x.reshape(-1, x.shape[-1])
        if self.mode == "batch":
            return (x - flat.mean(0)) / (flat.std(0) + 1e-8)
        if self.training:  # running: cumulative averages over every training batch so far
            n = flat.shape[0]
            w = n / (self.count + n)
            self.mean += w * (flat.mean(0) - self.mean)
            self.sq += w * ((flat**2).mean(0) - self.sq)
            self.count += n
        std = (self.sq - self.mean**2).clamp_min(1e-16).sqrt()
        return (x - self.mean) / std


class RegimeDMM(torch.nn.Module):
    def __init__(self, regimes: int, hidden: int, kernel: int, input_norm: str) -> None:
        super().__init__()
        self.norm = InputNorm(input_norm, 2)
        pad = kernel // 2
        self.encoder = torch.nn.Sequential(
            torch.nn.Conv1d(2, hidden, kernel, padding=pad),
            torch.nn.ReLU(),
            torch.nn.Conv1d(hidden, hidden, kernel, padding=pad),
            torch.nn.ReLU(),
            torch.nn.Conv1d(hidden, regimes, 1),
        )
        # Transition prior: persistent regimes at the start (self-transition ~0.87).
        self.trans_logits = torch.nn.Parameter(3.0 * torch.eye(regimes))
        self.init_logits = torch.nn.Parameter(torch.zeros(regimes))
        # Emissions: one diagonal Gaussian per regime, scales spread around unit scale so that
        # the regimes start apart (symmetry breaking).
        self.mu = torch.nn.Parameter(torch.zeros(regimes, 2))
        self.log_sigma = torch.nn.Parameter(
            torch.linspace(-1.0, 1.0, regimes)[:, None].repeat(1, 2)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Posterior q (batch, time, K), reconstruction NLL and KL per time step."""
        z = self.norm(x)
        # -log N(z_t; mu_k, sigma_k) for every regime k, summed over the two series.
        nll = (
            0.5 * ((z[:, :, None, :] - self.mu) / self.log_sigma.exp()) ** 2
            + self.log_sigma
            + 0.5 * math.log(2 * math.pi)
        ).sum(-1)
        # The posterior adds what the encoder reads from the surrounding window to the
        # step's own emission likelihood.
        q = torch.softmax(self.encoder(z.transpose(1, 2)).transpose(1, 2) - nll, dim=-1)
        recon = (q * nll).sum(-1).mean()
        # KL of each step's posterior to the prior the previous step predicts: q_{t-1} A
        # (the initial distribution at t = 0).
        log_q = torch.log(q.clamp_min(1e-12))
        a = torch.softmax(self.trans_logits, dim=-1)
        first = torch.softmax(self.init_logits, dim=-1).expand(q.shape[0], 1, -1)
        prior = torch.cat([first, q[:, :-1] @ a], dim=1)
        kl = (q * (log_q - torch.log(prior.clamp_min(1e-12)))).sum(-1).mean()
        return q, recon, kl


def matched_accuracy(pred: torch.Tensor, truth: torch.Tensor, k: int) -> float:
    """Accuracy under the best one-to-one mapping of inferred to true regimes (all k!)."""
    confusion = torch.zeros(k, k)
    confusion.index_put_((pred, truth), torch.ones(len(pred)), accumulate=True)
    best = max(sum(confusion[i, p[i]] for i in range(k)) for p in itertools.permutations(range(k)))
    return float(best) / len(pred)


def train(config: dict) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    gen = torch.Generator().manual_seed(config["seed"])
    k, window, batch = len(REGIMES), config["window"], config["batch"]
    _, train_x = simulate(config["train_length"], gen)
    eval_regimes, eval_x = simulate(config["eval_length"], gen)
    model = RegimeDMM(k, config["hidden"], config["kernel"], config["input_norm"])
    opt = torch.optim.Adam(
        model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"]
    )
    sums = torch.zeros(3)
    for step in range(1, config["steps"] + 1):
        model.train()
        start = torch.randint(0, len(train_x) - window, (batch,), generator=gen)
        x = torch.stack([train_x[s : s + window] for s in start.tolist()])
        _, recon, kl = model(x)
        loss = recon + config["beta"] * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        sums += torch.tensor([loss.item(), recon.item(), kl.item()])
        if step % config["eval_every"]:
            continue
        model.eval()
        with torch.no_grad():
            q = model(eval_x[None])[0][0]
        pred = q.argmax(-1)
        loss_m, recon_m, kl_m = (sums / config["eval_every"]).tolist()
        sums.zero_()
        rescue.report(
            loss=loss_m,
            recon=recon_m,
            kl=kl_m,
            regime_entropy=float(-(q * torch.log(q.clamp_min(1e-12))).sum(-1).mean()),
            regime_usage=torch.bincount(pred, minlength=k).div(len(pred)).tolist(),
            regime_acc=matched_accuracy(pred, eval_regimes, k),
        )


if __name__ == "__main__":
    params = yaml.safe_load((Path(__file__).parent / "cfg.yaml").read_text())["params"]
    for arg in sys.argv[1:]:
        key, _, value = arg.partition("=")
        params[key] = yaml.safe_load(value)
    train(params)
