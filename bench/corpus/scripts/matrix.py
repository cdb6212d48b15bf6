"""The fault matrix's training program: a small model (``model``: mlp, cnn, gru or transformer)
trained on synthetic data drawn from ``seed`` (``task``: classify, regress, imbalance or
multitask) with the settings a user of such a script sets: optimizer, learning rate, momentum,
warm-up, batch size, gradient clipping, init, input and target normalisation, loss weights.

Each case's cfg.yaml ships one setting that makes training fail. Nothing here looks at a
setting to decide an outcome: every failure is the training's own.

The data are in raw units, as a dataset on disk would be: tabular features and sensor readings
around 1e3, pixels in 0..255, regression targets in the thousands. ``normalization`` and
``target_norm`` (``none`` or ``standardize``) say whether the script rescales them.

Reports: the training ``loss`` (mean since the last report) every ``report_every`` steps, and
the held-out metrics every ``eval_every`` steps (0: at the end only; ``eval_at_start``: also
once before training).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

import rescue

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


def tokens(task, n, length=10, vocab=10):
    """Token sequences, labelled per position: ``reverse`` (the token at the mirrored
    position) or ``count`` (how often this token occurs in the sequence: 1, 2, 3 or more)."""
    x = torch.randint(0, vocab, (n, length))
    counts = (x[:, :, None] == x[:, None, :]).sum(2).clamp(max=3) - 1
    y = x.flip(1) if task == "reverse" else counts
    return {"x": x, "y": y}


def make_data(config):
    model, task = config["model"], config.get("task", "classify")
    n = config.get("n_train", 4000) + config.get("n_val", 1000)
    minority = config.get("minority", 0.05)
    if model == "mlp":
        data = tabular(task, n, minority)
    elif model == "cnn":
        data = images(task, n, minority)
    elif model == "gru":
        data = sequences(task, n, minority)
    else:
        data = tokens(task, n)
    n_train = config.get("n_train", 4000)
    train = {k: v[:n_train] for k, v in data.items()}
    val = {k: v[n_train:] for k, v in data.items()}
    return train, val


# -------------------------------------------------------------------------------- models


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


class Block(nn.Module):
    """Post-LN, the original layout: LayerNorm after each residual sum."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff1, self.ff2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        x = self.ln1(x + self.proj(a))
        return self.ln2(x + self.ff2(F.relu(self.ff1(x))))


class Transformer(nn.Module):
    def __init__(self, n_out, vocab=10, length=10, d=32, layers=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(length, d))
        self.blocks = nn.ModuleList(Block(d, 4) for _ in range(layers))
        self.heads = nn.ModuleList(nn.Linear(d, k) for k in n_out)

    def forward(self, x):
        h = self.embed(x) * math.sqrt(self.embed.embedding_dim) + self.pos
        for block in self.blocks:
            h = block(h)
        return [head(h) for head in self.heads]  # one prediction per position


def make_model(config, outputs):
    name = config["model"]
    if name == "mlp":
        return MLP(16, outputs)
    if name == "cnn":
        return CNN(outputs, config.get("batchnorm", False))
    if name == "gru":
        return GRU(outputs)
    return Transformer(outputs, d=config.get("d_model", 32), layers=config.get("layers", 2))


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


# ------------------------------------------------------------------------------ training


def cross_entropy(logits, y, weight=None):
    """Per example, or per position for the transformer's sequence labelling."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), weight=weight)


def preprocess(config, tr, va):
    """Inputs as the script feeds them: standardized with the training split's statistics
    (per feature for tables, one scale for images and signals), or as they come."""
    x_tr, x_va = tr["x"], va["x"]
    if config["model"] == "transformer" or config.get("normalization") == "none":
        return x_tr, x_va
    if config["model"] == "mlp":
        mean, std = x_tr.mean(0), x_tr.std(0)
    else:
        mean, std = x_tr.mean(), x_tr.std()
    return (x_tr - mean) / std, (x_va - mean) / std


def make_optimizer(config, model):
    lr, decay = config["lr"], config.get("weight_decay", 0.0)
    # foreach: one fused update over all parameters (faster, same arithmetic)
    if config.get("optimizer", "adam") == "sgd":
        momentum = config.get("momentum", 0.0)
        return torch.optim.SGD(
            model.parameters(), lr, momentum=momentum, weight_decay=decay, foreach=True
        )
    return torch.optim.AdamW(model.parameters(), lr, weight_decay=decay, foreach=True)


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    task = config.get("task", "classify")
    tr, va = make_data(config)
    x_tr, x_va = preprocess(config, tr, va)

    # regression targets: learned standardized (predictions mapped back) or as they come
    t_mean, t_std = 0.0, 1.0
    if task == "regress" and config.get("target_norm") != "none":
        t_mean, t_std = float(tr["t"].mean()), float(tr["t"].std())

    n_classes = int(tr["y"].max()) + 1 if "y" in tr else 0
    outputs = {"regress": [1], "imbalance": [2], "multitask": [n_classes, 1]}
    model = make_model(config, outputs.get(task, [n_classes]))
    apply_init(model, config.get("init", "default"))
    opt = make_optimizer(config, model)

    class_weight = torch.tensor([1.0, config.get("minority_weight", 1.0)])
    sample_weight = None
    if task == "imbalance" and config.get("sampling", "natural") == "balanced":
        sample_weight = (1.0 / torch.bincount(tr["y"]).float())[tr["y"]]

    def loss_of(out, idx):
        if task == "imbalance":
            return cross_entropy(out[0], tr["y"][idx], class_weight)
        if task == "regress":
            return F.mse_loss(out[0][:, 0], (tr["t"][idx] - t_mean) / t_std)
        if task == "multitask":
            cls = cross_entropy(out[0], tr["y"][idx])
            reg = F.mse_loss(out[1][:, 0], tr["t"][idx])
            return config.get("cls_weight", 1.0) * cls + config.get("reg_weight", 1.0) * reg
        return cross_entropy(out[0], tr["y"][idx])

    def evaluate():
        model.eval()
        with torch.no_grad():
            out = model(x_va)
        model.train()
        metrics = {}
        if task == "regress":
            pred = out[0][:, 0] * t_std + t_mean  # in the target's own units
            return {"val_mse": float(F.mse_loss(pred, va["t"]))}
        metrics["val_loss"] = float(cross_entropy(out[0], va["y"]))
        pred = out[0].argmax(-1)
        if task == "imbalance":
            recall = [float((pred[va["y"] == c] == c).float().mean()) for c in (0, 1)]
            metrics["val_bal_acc"] = sum(recall) / 2
            metrics["pred_usage"] = torch.bincount(pred, minlength=2).div(len(pred)).tolist()
            return metrics
        metrics["val_acc"] = float((pred == va["y"]).float().mean())
        if task == "multitask":
            metrics["val_mse"] = float(F.mse_loss(out[1][:, 0], va["t"]))
        return metrics

    lr, steps, warmup = config["lr"], config["steps"], config.get("warmup", 0)
    schedule = config.get("schedule", "constant")
    batch, clip = config.get("batch_size", 64), config.get("grad_clip", 0.0)
    report_every, eval_every = config.get("report_every", 1), config.get("eval_every", 0)
    if config.get("eval_at_start", False):
        rescue.report(**evaluate())
    window = []
    for step in range(1, steps + 1):
        # linear warm-up, then constant or a cosine decay to zero
        scale = min(1.0, step / warmup) if warmup > 0 else 1.0
        if schedule == "cosine" and step > warmup:
            scale = 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))
        for group in opt.param_groups:
            group["lr"] = lr * scale
        if sample_weight is not None:
            idx = torch.multinomial(sample_weight, batch, replacement=True)
        else:
            idx = torch.randint(0, len(x_tr), (batch,))
        loss = loss_of(model(x_tr[idx]), idx)
        opt.zero_grad()
        loss.backward()
        if clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        window.append(loss.item())
        if step % report_every == 0 or step == steps:
            metrics = {"loss": sum(window) / len(window)}
            window = []
            if step == steps or (eval_every and step % eval_every == 0):
                metrics.update(evaluate())
            rescue.report(**metrics)


if __name__ == "__main__":
    train({"model": "mlp", "task": "classify", "lr": 1e-3, "steps": 300, "seed": 0})
