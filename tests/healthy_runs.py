"""Healthy training curves from real small torch runs, for the no-false-alarm tests. Each
function trains for real and returns the reports the run would make."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _regression(seed: int, n: int = 256, noise: float = 0.05):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    w = torch.randn(8, 1, generator=g)
    y = torch.tanh(x @ w) + noise * torch.randn(n, 1, generator=g)
    return x, y


def _mlp(seed: int, out: int = 1) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, out))


def noisy_small_batch_sgd(seed: int = 0) -> list[dict]:
    """Batch size 4: every report is one mini-batch's loss, as noisy as it gets."""
    torch.set_num_threads(1)
    x, y = _regression(seed)
    model = _mlp(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    reports = []
    for _ in range(400):
        idx = torch.randint(0, len(x), (4,))
        loss = F.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        reports.append({"loss": float(loss)})
    return reports


def slow_steady_convergence(seed: int = 0) -> list[dict]:
    torch.set_num_threads(1)
    x, y = _regression(seed)
    model = _mlp(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.003, momentum=0.9)
    reports = []
    for step in range(1500):
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0:
            reports.append({"loss": float(loss)})
    return reports


def warmup_then_decay(seed: int = 0) -> list[dict]:
    """Linear warm-up to a high learning rate, which kicks the loss up before it settles."""
    torch.set_num_threads(1)
    x, y = _regression(seed)
    model = _mlp(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    reports = []
    for step in range(600):
        lr = 0.12 * min(1.0, step / 100) * (0.5 + 0.5 * math.cos(math.pi * step / 600))
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(0, len(x), (32,))
        loss = F.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 5 == 0:
            with torch.no_grad():
                reports.append({"loss": float(F.mse_loss(model(x), y))})
    return reports


def transient_spike(seed: int = 0) -> list[dict]:
    """One corrupted batch (targets x30) knocks the loss up; training recovers."""
    torch.set_num_threads(1)
    x, y = _regression(seed)
    model = _mlp(seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    reports = []
    for step in range(500):
        idx = torch.randint(0, len(x), (32,))
        target = y[idx] * (30.0 if step == 250 else 1.0)
        loss = F.mse_loss(model(x[idx]), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 5 == 0:
            with torch.no_grad():
                reports.append({"loss": float(F.mse_loss(model(x), y))})
    return reports


def loss_to_zero(seed: int = 0) -> list[dict]:
    """A noiseless, exactly learnable linear problem: the loss legitimately goes to ~0."""
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(128, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g)
    torch.manual_seed(seed)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    reports = []
    for step in range(1500):
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0:
            reports.append({"loss": float(loss), "grad_norm": _grad_norm(model)})
    return reports


def rl_noisy_returns(seed: int = 0) -> list[dict]:
    """REINFORCE with a baseline on a noisy 4-armed contextual bandit: returns, policy and value
    losses, entropy and action usage are all noisy, and the policy loss changes sign."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    payoff = torch.randn(6, 4, generator=g)
    policy = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    value = torch.nn.Linear(6, 1)
    opt = torch.optim.Adam([*policy.parameters(), *value.parameters()], lr=0.01)
    reports = []
    for _ in range(300):
        ctx = torch.randn(64, 6, generator=g)
        logits = policy(ctx)
        dist = torch.distributions.Categorical(logits=logits)
        action = dist.sample()
        reward = (ctx @ payoff).gather(1, action[:, None]).squeeze(1)
        reward = reward + 1.0 * torch.randn(64, generator=g)
        baseline = value(ctx).squeeze(1)
        advantage = reward - baseline.detach()
        policy_loss = -(dist.log_prob(action) * advantage).mean()
        value_loss = F.mse_loss(baseline, reward)
        entropy = dist.entropy().mean()
        opt.zero_grad()
        (policy_loss + 0.5 * value_loss - 0.01 * entropy).backward()
        opt.step()
        usage = torch.bincount(action, minlength=4).float() / 64
        reports.append(
            {
                "episode_return": float(reward.mean()),
                "policy_loss": float(policy_loss),
                "value_loss": float(value_loss),
                "entropy": float(entropy),
                "action_usage": usage.tolist(),
            }
        )
    return reports


def imbalanced_classifier(seed: int = 0) -> list[dict]:
    """Three classes at 75/20/5: early epochs predict mostly the majority class, then the
    classifier learns the others. Reports train and validation loss, accuracy and usage."""
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(3, 8, generator=g) * 1.5

    def sample(n):
        labels = torch.multinomial(torch.tensor([0.75, 0.2, 0.05]), n, True, generator=g)
        return centers[labels] + torch.randn(n, 8, generator=g), labels

    x, labels = sample(1024)
    vx, vlabels = sample(512)
    model = _mlp(seed, out=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    reports = []
    for _ in range(80):
        for i in range(0, 1024, 64):
            loss = F.cross_entropy(model(x[i : i + 64]), labels[i : i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            logits = model(vx)
            pred = logits.argmax(1)
            reports.append(
                {
                    "train_loss": float(F.cross_entropy(model(x), labels)),
                    "val_loss": float(F.cross_entropy(logits, vlabels)),
                    "val_acc": float((pred == vlabels).float().mean()),
                    "pred_usage": (torch.bincount(pred, minlength=3).float() / 512).tolist(),
                }
            )
    return reports


def _grad_norm(model: torch.nn.Module) -> float:
    return float(torch.norm(torch.stack([p.grad.norm() for p in model.parameters()])))


CORPUS = {
    "noisy_small_batch_sgd": noisy_small_batch_sgd,
    "slow_steady_convergence": slow_steady_convergence,
    "warmup_then_decay": warmup_then_decay,
    "transient_spike": transient_spike,
    "loss_to_zero": loss_to_zero,
    "rl_noisy_returns": rl_noisy_returns,
    "imbalanced_classifier": imbalanced_classifier,
}
