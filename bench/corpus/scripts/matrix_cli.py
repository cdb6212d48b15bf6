"""A plain training script for the fault matrix: no ``train(config)``, flags in, lines out.

    python matrix_cli.py --model gru --task classify --lr 0.01 --steps 200 --seed 0

prints ``step 120 | loss 0.4312 | val_acc 0.61`` (or one JSON object per line with
``--log_format json``). The models (mlp, cnn, gru) and the synthetic data, drawn from
``--seed``, are those of ``matrix.py``, in their raw units: tabular features and sensor readings
around 1e3, pixels in 0..255, regression targets in the thousands; ``--normalization`` and
``--target_norm`` (``none`` or ``standardize``) say whether the script rescales them.

Each case ships one flag value that makes training fail; nothing here looks at a value to
decide an outcome.
"""

import argparse
import json
import math

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------- data


def _teacher(n_in, n_out, hidden=32):
    """A random smooth function: what the labels and targets are made of."""
    w1 = torch.randn(n_in, hidden) / math.sqrt(n_in)
    w2 = torch.randn(hidden, n_out) / math.sqrt(hidden)
    return lambda z: torch.tanh(z @ w1) @ w2


def _standard(v):
    return (v - v.mean(0)) / v.std(0)


def tabular(task, n, minority):
    """16 features in their own units (scales of about 1e3, offsets of a few scales)."""
    z = torch.randn(n, 16)
    out = {}
    if task == "classify":
        out["y"] = _teacher(16, 4)(z).argmax(1)
    elif task == "regress":
        # a price in dollars
        y = _standard(_teacher(16, 1)(z)[:, 0]) + 0.1 * torch.randn(n)
        out["t"] = 3000.0 + 1000.0 * y
    elif task == "imbalance":
        y = (torch.rand(n) < minority).long()
        mu = torch.randn(16)
        z = z + y[:, None] * 2.0 * mu / mu.norm()  # the classes overlap: Bayes error is real
        out["y"] = y
    elif task == "multitask":
        # the class depends on the first 8 features, the regression target on the other 8
        out["y"] = _teacher(8, 4)(z[:, :8]).argmax(1)
        out["t"] = _standard(_teacher(8, 1)(z[:, 8:])[:, 0]) + 0.1 * torch.randn(n)
    scales = 1e3 * torch.exp(torch.empty(16).uniform_(-1.0, 1.0))
    offsets = scales * torch.empty(16).uniform_(0.0, 3.0)
    out["x"] = z * scales + offsets
    return out


def images(task, n, minority):
    """1x12x12 images, pixels in 0..255."""
    img = 0.3 + 0.12 * torch.randn(n, 12, 12)
    rows, cols = torch.arange(12), torch.arange(12)
    every = torch.arange(n)
    out = {}
    if task in ("classify", "multitask"):
        # a bar of 5 pixels: horizontal, vertical, diagonal or anti-diagonal
        y = torch.randint(0, 4, (n,))
        dr, dc = torch.tensor([0, 1, 1, 1])[y], torch.tensor([1, 0, 1, -1])[y]
        r = (torch.rand(n) * torch.tensor([12, 8, 8, 8])[y]).long()
        c = (torch.rand(n) * torch.tensor([8, 12, 8, 8])[y]).long() + 4 * (y == 3)
        amp = torch.empty(n).uniform_(0.25, 0.6)
        for k in range(5):
            img[every, r + k * dr, c + k * dc] += amp
        out["y"] = y
        out["t"] = _standard(amp) + 0.1 * torch.randn(n)  # the bar's brightness
    elif task == "regress":
        # a cell's area in square micrometres (a pixel is 10 um across)
        h, w = torch.randint(1, 7, (n,)), torch.randint(1, 7, (n,))
        r, c = (torch.rand(n) * (13 - h)).long(), (torch.rand(n) * (13 - w)).long()
        inside_r = (rows >= r[:, None]) & (rows < (r + h)[:, None])
        inside_c = (cols >= c[:, None]) & (cols < (c + w)[:, None])
        img += 0.45 * (inside_r[:, :, None] & inside_c[:, None, :])
        out["t"] = (h * w * 100).float()
    elif task == "imbalance":
        # a faint 2x2 defect somewhere on a textured part
        y = (torch.rand(n) < minority).long()
        r, c = torch.randint(0, 11, (n,)), torch.randint(0, 11, (n,))
        inside_r = (rows >= r[:, None]) & (rows < (r + 2)[:, None])
        inside_c = (cols >= c[:, None]) & (cols < (c + 2)[:, None])
        img += 0.25 * y[:, None, None] * (inside_r[:, :, None] & inside_c[:, None, :])
        out["y"] = y
    out["x"] = (img.clamp(0, 1) * 255).round()[:, None]
    return out


def sequences(task, n, minority, length=16):
    """One sensor channel over ``length`` steps, in its raw units (about 2000 +- 500)."""
    t = torch.arange(length + 5, dtype=torch.float32)
    phase = torch.rand(n, 1) * 2 * math.pi
    amp = torch.empty(n, 1).uniform_(0.5, 1.5)
    out = {}
    if task in ("classify", "multitask"):
        y = torch.randint(0, 3, (n,))
        freq = torch.tensor([0.04, 0.09, 0.16])[y][:, None]
        s = amp * torch.sin(2 * math.pi * freq * t + phase) + 0.3 * torch.randn(n, length + 5)
        out["y"] = y
        out["t"] = _standard(amp[:, 0]) + 0.1 * torch.randn(n)
    elif task == "regress":
        # forecast the reading five steps past the window
        freq = torch.empty(n, 1).uniform_(0.03, 0.12)
        s = amp * torch.sin(2 * math.pi * freq * t + phase) + 0.1 * torch.randn(n, length + 5)
        out["t"] = 2000.0 + 500.0 * s[:, -1]
    elif task == "imbalance":
        # rare sequences carry a short faint pulse
        y = (torch.rand(n) < minority).long()
        s = 0.5 * torch.randn(n, length + 5)
        for i in torch.nonzero(y)[:, 0].tolist():
            at = int(torch.randint(0, length - 3, ()))
            s[i, at : at + 3] += 0.8
        out["y"] = y
    out["x"] = (2000.0 + 500.0 * s[:, :length])[:, :, None]
    return out


class MLP(nn.Module):
    def __init__(self, n_in, n_out, width=64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()
        )
        self.heads = nn.ModuleList(nn.Linear(width, k) for k in n_out)

    def forward(self, x):
        h = self.body(x)
        return [head(h) for head in self.heads]


class CNN(nn.Module):
    def __init__(self, n_out, batchnorm=False):
        super().__init__()

        def norm(c):
            return nn.BatchNorm2d(c) if batchnorm else nn.Identity()

        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            norm(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            norm(32),
            nn.ReLU(),
        )
        self.heads = nn.ModuleList(nn.Linear(64, k) for k in n_out)

    def forward(self, x):
        h = self.body(x)
        # average and max pooling: areas are sums, defects are peaks
        h = torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)
        return [head(h) for head in self.heads]


class GRU(nn.Module):
    def __init__(self, n_out, hidden=32):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.heads = nn.ModuleList(nn.Linear(hidden, k) for k in n_out)

    def forward(self, x):
        _, h = self.gru(x)
        return [head(h[-1]) for head in self.heads]


def apply_init(model, init):
    """``default`` keeps PyTorch's; the others set every weight matrix (norm layers keep
    theirs) and zero the biases."""
    if init == "default":
        return
    norms = (nn.LayerNorm, nn.BatchNorm2d)
    skip = {id(p) for m in model.modules() if isinstance(m, norms) for p in m.parameters()}
    with torch.no_grad():
        for p in model.parameters():
            if id(p) in skip:
                continue
            if p.dim() < 2 or init == "zeros":
                p.zero_()
            elif init == "constant":
                p.fill_(0.05)
            elif init == "kaiming":
                nn.init.kaiming_normal_(p.view(p.shape[0], -1), nonlinearity="relu")
            else:
                raise ValueError(f"init: expected zeros, constant, default or kaiming: {init!r}")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["mlp", "cnn", "gru"], default="mlp")
    p.add_argument(
        "--task", choices=["classify", "regress", "imbalance", "multitask"], default="classify"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--n_train", type=int, default=4000)
    p.add_argument("--n_val", type=int, default=1000)
    p.add_argument("--minority", type=float, default=0.05)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--weight_decay", type=float, default=0.0)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--grad_clip", type=float, default=0.0)
    p.add_argument("--init", choices=["zeros", "constant", "default", "kaiming"], default="default")
    p.add_argument("--normalization", choices=["none", "standardize"], default="standardize")
    p.add_argument("--target_norm", choices=["none", "standardize"], default="standardize")
    p.add_argument("--minority_weight", type=float, default=1.0)
    p.add_argument("--reg_weight", type=float, default=1.0)
    p.add_argument("--log_every", type=int, default=10)
    p.add_argument("--eval_every", type=int, default=0, help="0: at the end only")
    p.add_argument("--eval_at_start", type=int, default=0)
    p.add_argument("--log_format", choices=["text", "json"], default="text")
    return p.parse_args()


def log(args, step, metrics):
    if args.log_format == "json":
        print(json.dumps({"step": step, **metrics}), flush=True)
    else:
        parts = [f"step {step}"] + [f"{k} {v:.6g}" for k, v in metrics.items()]
        print(" | ".join(parts), flush=True)


def main():
    args = parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    make = {"mlp": tabular, "cnn": images, "gru": sequences}[args.model]
    data = make(args.task, args.n_train + args.n_val, args.minority)
    tr = {k: v[: args.n_train] for k, v in data.items()}
    va = {k: v[args.n_train :] for k, v in data.items()}

    x_tr, x_va = tr["x"], va["x"]
    if args.normalization == "standardize":
        # per feature for tables, one scale for images and signals
        mean = x_tr.mean(0) if args.model == "mlp" else x_tr.mean()
        std = x_tr.std(0) if args.model == "mlp" else x_tr.std()
        x_tr, x_va = (x_tr - mean) / std, (x_va - mean) / std
    t_mean, t_std = 0.0, 1.0
    if args.task == "regress" and args.target_norm == "standardize":
        t_mean, t_std = float(tr["t"].mean()), float(tr["t"].std())

    n_classes = int(tr["y"].max()) + 1 if "y" in tr else 0
    outputs = {"classify": [n_classes], "regress": [1], "imbalance": [2]}
    outputs["multitask"] = [n_classes, 1]
    if args.model == "mlp":
        model = MLP(16, outputs[args.task])
    elif args.model == "cnn":
        model = CNN(outputs[args.task])
    else:
        model = GRU(outputs[args.task])
    apply_init(model, args.init)
    # foreach: one fused update over all parameters (faster, same arithmetic)
    if args.optimizer == "sgd":
        opt = torch.optim.SGD(
            model.parameters(),
            args.lr,
            momentum=args.momentum,
            weight_decay=args.weight_decay,
            foreach=True,
        )
    else:
        opt = torch.optim.AdamW(
            model.parameters(), args.lr, weight_decay=args.weight_decay, foreach=True
        )
    class_weight = torch.tensor([1.0, args.minority_weight])

    def evaluate():
        model.eval()
        with torch.no_grad():
            out = model(x_va)
        model.train()
        if args.task == "regress":
            pred = out[0][:, 0] * t_std + t_mean  # in the target's own units
            return {"val_mse": float(F.mse_loss(pred, va["t"]))}
        pred = out[0].argmax(1)
        res = {"val_loss": float(F.cross_entropy(out[0], va["y"]))}
        if args.task == "imbalance":
            recall = [float((pred[va["y"] == c] == c).float().mean()) for c in (0, 1)]
            res["val_bal_acc"] = sum(recall) / 2
            res["val_minority_rate"] = float((pred == 1).float().mean())
            return res
        res["val_acc"] = float((pred == va["y"]).float().mean())
        if args.task == "multitask":
            res["val_mse"] = float(F.mse_loss(out[1][:, 0], va["t"]))
        return res

    if args.eval_at_start:
        log(args, 0, evaluate())
    running = []
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(x_tr), (args.batch_size,))
        out = model(x_tr[idx])
        if args.task == "regress":
            loss = F.mse_loss(out[0][:, 0], (tr["t"][idx] - t_mean) / t_std)
        elif args.task == "multitask":
            loss = F.cross_entropy(out[0], tr["y"][idx])
            loss = loss + args.reg_weight * F.mse_loss(out[1][:, 0], tr["t"][idx])
        elif args.task == "imbalance":
            loss = F.cross_entropy(out[0], tr["y"][idx], weight=class_weight)
        else:
            loss = F.cross_entropy(out[0], tr["y"][idx])
        opt.zero_grad()
        loss.backward()
        if args.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        running.append(loss.item())
        if step % args.log_every == 0 or step == args.steps:
            metrics = {"loss": sum(running) / len(running)}
            running = []
            if step == args.steps or (args.eval_every and step % args.eval_every == 0):
                metrics.update(evaluate())
            log(args, step, metrics)


if __name__ == "__main__":
    main()
