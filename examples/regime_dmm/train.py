"""Deep Markov model of market regimes on two return series of very different volatility.

prototype
"""

from __future__ import annotations

import itertools
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

import rescue

REGIMES = ("calm", "neutral", "volatile", "panic")
K = len(REGIMES)
# True regime emissions, in units of each series' own scale (daily % return).
TRUE_MU = np.array([0.08, 0.0, -0.25, -1.2])
TRUE_SIGMA = np.array([0.3, 0.7, 1.6, 3.6])
# True transition matrix of the traditional market; the tokenized market has the same regimes
# and the same long-run regime shares but switches SPEED times as often.
TRAD_TRANS = np.array(
    [
        [0.980, 0.018, 0.002, 0.000],
        [0.020, 0.962, 0.016, 0.002],
        [0.004, 0.040, 0.936, 0.020],
        [0.000, 0.015, 0.080, 0.905],
    ]
)
SPEED = 1.8
TRUE_TRANS = {
    "traditional": TRAD_TRANS,
    "tokenized": np.eye(K) + SPEED * (TRAD_TRANS - np.eye(K)),
}
SERIES = ("traditional", "tokenized")
SIG_INIT = [0.5, 0.8, 1.3, 2.2]


def stationary(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eig(a.T)
    p = np.real(v[:, np.argmin(np.abs(w - 1))])
    return p / p.sum()


def simulate(rng, n_seq, seq_len, scales):
    """Returns x (2*n_seq, T) float32, z (2*n_seq, T) int64, series id (2*n_seq,)."""
    xs, zs, sid = [], [], []
    for s, name in enumerate(SERIES):
        a = TRUE_TRANS[name]
        pi = stationary(a)
        cum = np.cumsum(a, axis=1)
        for _ in range(n_seq):
            z = np.empty(seq_len, dtype=np.int64)
            z[0] = rng.choice(K, p=pi)
            u = rng.random(seq_len)
            for t in range(1, seq_len):
                z[t] = min(int(np.searchsorted(cum[z[t - 1]], u[t])), K - 1)
            x = scales[s] * (TRUE_MU[z] + TRUE_SIGMA[z] * rng.standard_normal(seq_len))
            xs.append(x)
            zs.append(z)
            sid.append(s)
    return (
        torch.tensor(np.array(xs), dtype=torch.float32),
        torch.tensor(np.array(zs)),
        torch.tensor(sid),
    )


class DMM(nn.Module):
    def __init__(self, hidden, emission_init, norm, logsig_max=10.0):
        super().__init__()
        self.logsig_max = logsig_max
        self.kl_form = "expected"
        self.norm = norm
        act = nn.Tanh
        self.enc = nn.Sequential(
            nn.Conv1d(2, hidden, 9, padding=4), act(),
            nn.Conv1d(hidden, hidden, 9, padding=4), act(),
            nn.Conv1d(hidden, K, 1),
        )
        self.trans_logits = nn.Parameter(torch.zeros(len(SERIES), K, K))
        self.init_logits = nn.Parameter(torch.zeros(len(SERIES), K))
        if emission_init == "ordered":
            self.em_mu = nn.Parameter(torch.zeros(K))
            self.em_logsig = nn.Parameter(torch.log(torch.tensor(SIG_INIT)))
        else:
            self.em_mu = nn.Parameter(0.01 * torch.randn(K))
            self.em_logsig = nn.Parameter(0.01 * torch.randn(K))
        self.register_buffer("n_seen", torch.zeros(len(SERIES)))
        self.register_buffer("r_mean", torch.zeros(len(SERIES)))
        self.register_buffer("r_var", torch.ones(len(SERIES)))

    def normalise(self, x, sid):
        if self.norm == "none":
            return x
        if self.norm == "batch":
            out = torch.empty_like(x)
            for s in range(len(SERIES)):
                m = sid == s
                if m.any():
                    xs = x[m]
                    out[m] = (xs - xs.mean()) / (xs.std() + 1e-6)
            return out
        # running: per-series running mean/std, updated from training batches
        if self.training:
            with torch.no_grad():
                for s in range(len(SERIES)):
                    m = sid == s
                    if not m.any():
                        continue
                    xs = x[m]
                    n_b = xs.numel()
                    n_a = self.n_seen[s]
                    d = xs.mean() - self.r_mean[s]
                    tot = n_a + n_b
                    new_mean = self.r_mean[s] + d * n_b / tot
                    m2 = self.r_var[s] * n_a + xs.var(unbiased=False) * n_b + d**2 * n_a * n_b / tot
                    self.r_mean[s] = new_mean
                    self.r_var[s] = m2 / tot
                    self.n_seen[s] = tot
        return (x - self.r_mean[sid, None]) / (self.r_var[sid, None].sqrt() + 1e-6)

    def forward(self, x, sid):
        xn = self.normalise(x, sid)
        feat = torch.stack([xn, xn.abs()], dim=-1)
        logits = self.enc(feat.transpose(1, 2)).transpose(1, 2)
        return xn, logits

    def terms(self, xn, logits, sid):
        logq = F.log_softmax(logits, -1)
        q = logq.exp()
        logsig = self.em_logsig.clamp(-4.0, self.logsig_max)
        sig = logsig.exp()
        nll = 0.5 * math.log(2 * math.pi) + logsig + 0.5 * ((xn[..., None] - self.em_mu) / sig) ** 2
        recon = (q * nll).sum(-1).mean()
        trans = F.softmax(self.trans_logits[sid], -1)  # B,K,K
        log_p0 = F.log_softmax(self.init_logits[sid], -1)[:, None, :]
        if self.kl_form == "mixture":
            pt = torch.einsum("btj,bjk->btk", q[:, :-1], trans)
            logp = torch.cat([log_p0, torch.log(pt + 1e-8)], 1)
            kl = (q * (logq - logp)).sum(-1).mean()
        else:
            logA = F.log_softmax(self.trans_logits[sid], -1)
            ce_t = -torch.einsum("btj,btk,bjk->bt", q[:, :-1], q[:, 1:], logA)
            ce_0 = -(q[:, 0] * log_p0[:, 0]).sum(-1)
            negent = (q * logq).sum(-1)
            kl = (negent.sum(1) + ce_0 + ce_t.sum(1)).mean() / q.shape[1]
        usage = q.mean((0, 1))
        div = (usage * torch.log(K * usage + 1e-8)).sum()
        ent = -(q * logq).sum(-1).mean()
        return recon, kl, div, ent, q


def best_perm_acc(pred, true):
    conf = np.zeros((K, K))
    np.add.at(conf, (pred, true), 1)
    best = max(sum(conf[i, p[i]] for i in range(K)) for p in itertools.permutations(range(K)))
    return best / len(pred)


def train(config: dict) -> None:
    torch.set_num_threads(1)
    seed = int(config["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(int(config["data_seed"]))
    scales = (config["trad_scale"], config["trad_scale"] * config["vol_ratio"])
    x_tr, z_tr, s_tr = simulate(rng, config["train_seqs"], config["seq_len"], scales)
    x_te, z_te, s_te = simulate(rng, config["test_seqs"], config["seq_len"], scales)
    global SIG_INIT
    SIG_INIT = config.get("sig_init", SIG_INIT)
    model = DMM(config["hidden"], config["emission_init"], config["input_norm"], config.get("logsig_max", 10.0))
    model.kl_form = config.get("kl_form", "expected")
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    epochs = int(config["epochs"])
    warm = config["kl_warmup"] * epochs
    anneal = config["kl_anneal"] * epochs
    bs = int(config["batch_size"])
    n = x_tr.shape[0]
    g = torch.Generator().manual_seed(seed)
    for ep in range(epochs):
        beta = 0.0 if ep < warm else min(1.0, (ep - warm + 1) / max(anneal, 1.0))
        beta *= config["beta_max"]
        model.train()
        perm = torch.randperm(n, generator=g)
        tot = np.zeros(4)
        nb = 0
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            xn, logits = model(x_tr[idx], s_tr[idx])
            recon, kl, div, ent, _ = model.terms(xn, logits, s_tr[idx])
            loss = recon + beta * kl + config["diversity_weight"] * div
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config["grad_clip"])
            opt.step()
            tot += [loss.item(), recon.item(), kl.item(), div.item()]
            nb += 1
        tot /= nb
        model.eval()
        with torch.no_grad():
            xn, logits = model(x_te, s_te)
            _, _, _, ent, q = model.terms(xn, logits, s_te)
            order = torch.argsort(model.em_logsig)  # name regimes by learned volatility
            rank = torch.empty_like(order)
            rank[order] = torch.arange(K)
            pred = rank[q.argmax(-1)].flatten().numpy()
            usage = np.bincount(pred, minlength=K) / pred.size
            acc = best_perm_acc(pred, z_te.flatten().numpy())
            pr = rank[q.argmax(-1)]
            u_tr = np.bincount(pr[s_te == 0].flatten().numpy(), minlength=K) / pr[s_te == 0].numel()
            u_tk = np.bincount(pr[s_te == 1].flatten().numpy(), minlength=K) / pr[s_te == 1].numel()
            sig = model.em_logsig.exp()[order].tolist()
        rescue.report(
            loss=tot[0],
            recon_loss=tot[1],
            kl=tot[2],
            entropy=float(ent),
            regime_usage=usage.tolist(),
            regime_acc=acc,
            min_usage=float(usage.min()),
            u_trad=u_tr.tolist(), u_tok=u_tk.tolist(), sig=sig,
        )


def main(argv: list[str]) -> None:
    params = yaml.safe_load((Path(__file__).parent / "cfg.yaml").read_text())["params"]
    for arg in argv:
        key, _, value = arg.partition("=")
        params[key] = yaml.safe_load(value)
    t0 = time.time()
    train(params)
    print(f"wall {time.time() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
