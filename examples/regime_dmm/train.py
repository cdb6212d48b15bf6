"""Deep Markov model of market regimes on two return series of very different volatility.

A small re-creation of seed 001: a deep Markov model (DMM) with 4 discrete regimes
(calm / neutral / volatile / panic) is trained by amortised variational inference on the daily
returns of a "traditional" real-estate series and a "tokenized" one that is ~12x more volatile.

Generative model (one set of regimes shared by both series):
  z_1 ~ pi_s,  z_t | z_{t-1} ~ A_s[z_{t-1}]          learned per-series prior (transition matrix)
  x_t | z_t = k ~ Normal(mu_k, sigma_k)               learned Gaussian emission per regime
Inference network (structured, as in the DMM's "combiner"):
  q(z_t | z_{t-1}, x) = softmax(u_t(x) + C[z_{t-1}])  u_t from a temporal conv net over a window
  of returns around day t, C a learned combiner matrix; regime marginals q(z_t) follow exactly.
Loss per day = recon NLL (exact expectation over regimes) + beta * KL(q || prior)
               + diversity_weight * KL(mean regime usage || uniform),
with beta = 0 for the first `kl_warmup` fraction of epochs, then annealed linearly to 1.

The returns are generated inside the script from a KNOWN 4-regime Markov process (same regimes
for both series, the tokenized one 12x more volatile and switching more often), so the true
regimes of held-out sequences are known and regime accuracy can be measured.

`input_norm` says what the model sees:
  none    - raw returns (daily %): the tokenized series' returns are 12x larger than the
            traditional ones and far outside the scale the emissions start at;
  running - each series standardised by its own running mean/std (accumulated over the
            training batches, frozen at evaluation);
  batch   - each series standardised by the mean/std of its own returns in the current batch.
"""

from __future__ import annotations

import itertools
import math
import random
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

import rescue

REGIMES = ("calm", "neutral", "volatile", "panic")
K = len(REGIMES)
SERIES = ("traditional", "tokenized")
# True regime emissions in units of each series' own scale (daily % return).
TRUE_MU = np.array([0.08, 0.0, -0.25, -1.2])
TRUE_SIGMA = np.array([0.3, 0.7, 1.6, 3.6])
# True transition matrix of the traditional market; the tokenized market has the same regimes and
# the same long-run regime shares but switches `tokenized_speed` times as often.
TRAD_TRANS = np.array(
    [
        [0.980, 0.018, 0.002, 0.000],
        [0.020, 0.962, 0.016, 0.002],
        [0.004, 0.040, 0.936, 0.020],
        [0.000, 0.015, 0.080, 0.905],
    ]
)
# Emission volatilities start ordered calm < neutral < volatile < panic, on the scale of
# standardised returns (std 1); means start at 0.
SIGMA_INIT = (0.5, 0.8, 1.3, 2.2)


def stationary(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eig(a.T)
    p = np.real(v[:, np.argmin(np.abs(w - 1))])
    return p / p.sum()


def simulate(rng: np.random.Generator, n_seq: int, seq_len: int, config: dict):
    """n_seq sequences of each series: returns x (2n, T), true regimes z (2n, T), series id (2n)."""
    xs, zs, sid = [], [], []
    scales = (config["trad_scale"], config["trad_scale"] * config["vol_ratio"])
    for s in range(len(SERIES)):
        a = (
            TRAD_TRANS
            if s == 0
            else np.eye(K) + config["tokenized_speed"] * (TRAD_TRANS - np.eye(K))
        )
        cum = np.cumsum(a, axis=1)
        z = np.empty((n_seq, seq_len), dtype=np.int64)
        z[:, 0] = rng.choice(K, size=n_seq, p=stationary(a))
        u = rng.random((n_seq, seq_len))
        for t in range(1, seq_len):
            z[:, t] = np.minimum((u[:, t, None] > cum[z[:, t - 1]]).sum(1), K - 1)
        x = scales[s] * (TRUE_MU[z] + TRUE_SIGMA[z] * rng.standard_normal((n_seq, seq_len)))
        xs.append(x)
        zs.append(z)
        sid.append(np.full(n_seq, s))
    return (
        torch.tensor(np.concatenate(xs), dtype=torch.float32),
        torch.tensor(np.concatenate(zs)),
        torch.tensor(np.concatenate(sid)),
    )


class RegimeDMM(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        self.norm = config["input_norm"]
        if self.norm not in ("none", "running", "batch"):
            raise ValueError(f"input_norm must be none, running or batch, not {self.norm!r}")
        h, w = int(config["hidden"]), int(config["window"])
        # inference network: a temporal conv net, i.e. an MLP over the window of returns around t
        self.encoder = nn.Sequential(
            nn.Conv1d(2, h, w, padding=w // 2),
            nn.Tanh(),
            nn.Conv1d(h, h, w, padding=w // 2),
            nn.Tanh(),
            nn.Conv1d(h, K, 1),
        )
        stay = float(config["stay_init"])  # regimes persist: prior and combiner start sticky
        a0 = torch.full((K, K), (1 - stay) / (K - 1))
        a0.fill_diagonal_(stay)
        self.trans_logits = nn.Parameter(a0.log().repeat(len(SERIES), 1, 1))
        self.init_logits = nn.Parameter(torch.zeros(len(SERIES), K))
        self.combiner = nn.Parameter(math.log(stay * (K - 1) / (1 - stay)) * torch.eye(K))
        self.em_mu = nn.Parameter(torch.zeros(K))
        self.em_logsig = nn.Parameter(torch.log(torch.tensor(SIGMA_INIT)))
        self.register_buffer("n_seen", torch.zeros(len(SERIES)))
        self.register_buffer("r_mean", torch.zeros(len(SERIES)))
        self.register_buffer("r_var", torch.ones(len(SERIES)))

    def normalise(self, x: torch.Tensor, sid: torch.Tensor) -> torch.Tensor:
        if self.norm == "none":
            return x
        if self.norm == "batch":
            out = torch.empty_like(x)
            for s in range(len(SERIES)):
                m = sid == s
                if m.any():
                    out[m] = (x[m] - x[m].mean()) / (x[m].std() + 1e-6)
            return out
        if self.training:  # running: accumulate each series' mean/var over the training batches
            with torch.no_grad():
                for s in range(len(SERIES)):
                    m = sid == s
                    if not m.any():
                        continue
                    xb, n_a = x[m], self.n_seen[s]
                    n_b = xb.numel()
                    tot = n_a + n_b
                    d = xb.mean() - self.r_mean[s]
                    m2 = self.r_var[s] * n_a + xb.var(unbiased=False) * n_b + d**2 * n_a * n_b / tot
                    self.r_mean[s] += d * n_b / tot
                    self.r_var[s] = m2 / tot
                    self.n_seen[s] = tot
        return (x - self.r_mean[sid, None]) / (self.r_var[sid, None].sqrt() + 1e-6)

    def forward(self, x: torch.Tensor, sid: torch.Tensor):
        """Returns (regime marginals q (B,T,K), recon NLL per day (B,T), KL per day (B,))."""
        xn = self.normalise(x, sid)
        feat = torch.stack([xn, xn.abs()], dim=1)  # B,2,T
        u = self.encoder(feat).transpose(1, 2)  # B,T,K
        log_a = F.log_softmax(self.trans_logits[sid], -1)  # B,K,K
        log_p0 = F.log_softmax(self.init_logits[sid], -1)  # B,K
        lq0 = F.log_softmax(u[:, 0], -1)
        q0 = lq0.exp()
        lq_trans = F.log_softmax(u[:, 1:, None, :] + self.combiner, -1)  # q(z_t|z_{t-1}): B,T-1,K,K
        q_trans = lq_trans.exp()
        # marginals q(z_t) = q(z_1) Q_2 ... Q_t, prefix products by a log-depth scan
        prod, d = q_trans, 1
        while d < prod.shape[1]:
            prod = torch.cat([prod[:, :d], torch.matmul(prod[:, :-d], prod[:, d:])], 1)
            d *= 2
        q = torch.cat([q0[:, None], torch.einsum("bj,btjk->btk", q0, prod)], 1)
        kl_rows = (q_trans * (lq_trans - log_a[:, None])).sum(-1)  # B,T-1,K
        kl = ((q0 * (lq0 - log_p0)).sum(-1) + (q[:, :-1] * kl_rows).sum((1, 2))) / x.shape[1]
        logsig = self.em_logsig.clamp(-5.0, 5.0)
        nll = (
            0.5 * math.log(2 * math.pi)
            + logsig
            + 0.5 * ((xn[..., None] - self.em_mu) / logsig.exp()) ** 2
        )
        recon = (q * nll).sum(-1)
        return q, recon, kl


def best_permutation_accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    conf = np.zeros((K, K))
    np.add.at(conf, (pred, true), 1)
    best = max(sum(conf[i, p[i]] for i in range(K)) for p in itertools.permutations(range(K)))
    return float(best / len(pred))


def train(config: dict) -> None:
    torch.set_num_threads(1)
    seed = int(config["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(int(config["data_seed"]))
    # held-out sequences first, so the test set does not depend on the training-set size
    x_te, z_te, s_te = simulate(rng, int(config["test_seqs"]), int(config["seq_len"]), config)
    x_tr, _, s_tr = simulate(rng, int(config["train_seqs"]), int(config["seq_len"]), config)
    true_te = z_te.flatten().numpy()

    model = RegimeDMM(config)
    opt = torch.optim.Adam(model.parameters(), lr=float(config["lr"]))
    epochs, bs = int(config["epochs"]), int(config["batch_size"])
    warm = float(config["kl_warmup"]) * epochs
    anneal = max(float(config["kl_anneal"]) * epochs, 1.0)
    gen = torch.Generator().manual_seed(seed)
    n = x_tr.shape[0]
    for epoch in range(epochs):
        beta = 0.0 if epoch < warm else min(1.0, (epoch - warm + 1) / anneal)
        model.train()
        sums, batches = np.zeros(3), 0
        for idx in torch.randperm(n, generator=gen).split(bs):
            q, recon, kl = model(x_tr[idx], s_tr[idx])
            recon, kl = recon.mean(), kl.mean()
            usage = q.mean((0, 1))
            diversity = (usage * torch.log(K * usage + 1e-8)).sum()  # KL(usage || uniform)
            loss = recon + beta * kl + float(config["diversity_weight"]) * diversity
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), float(config["grad_clip"]))
            opt.step()
            sums += (loss.item(), recon.item(), kl.item())
            batches += 1
        sums /= batches

        model.eval()
        with torch.no_grad():
            q, _, _ = model(x_te, s_te)
            entropy = -(q * torch.log(q.clamp_min(1e-12))).sum(-1).mean().item()
            # name the learned regimes by their learned volatility: 0 = calm ... 3 = panic
            rank = torch.empty(K, dtype=torch.long)
            rank[torch.argsort(model.em_logsig)] = torch.arange(K)
            pred = rank[q.argmax(-1)]
        usage = np.bincount(pred.flatten().numpy(), minlength=K) / pred.numel()
        per_series = [
            np.bincount(pred[s_te == s].flatten().numpy(), minlength=K) / pred[s_te == s].numel()
            for s in range(len(SERIES))
        ]
        rescue.report(
            loss=sums[0],
            recon_loss=sums[1],
            kl=sums[2],
            entropy=entropy,
            regime_usage=usage.tolist(),
            usage_traditional=per_series[0].tolist(),
            usage_tokenized=per_series[1].tolist(),
            min_usage=float(usage.min()),
            regime_acc=best_permutation_accuracy(pred.flatten().numpy(), true_te),
        )


def main(argv: list[str]) -> None:
    params = yaml.safe_load((Path(__file__).resolve().parent / "cfg.yaml").read_text())["params"]
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            raise SystemExit(f"expected key=value, got {arg!r}")
        params[key] = yaml.safe_load(value)
    train(params)


if __name__ == "__main__":
    main(sys.argv[1:])
