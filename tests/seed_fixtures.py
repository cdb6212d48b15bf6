"""Metric streams rebuilt from the numbers printed in the five post-mortems of
``shared/seeds``. Where a seed prints a few checkpoints of a long run, the reports in between
are linear interpolations (a real run reports far more often than a post-mortem prints)."""

from __future__ import annotations


def interpolate(points: list[tuple[float, float]], xs: list[float]) -> list[float]:
    out = []
    for x in xs:
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            if x0 <= x <= x1:
                out.append(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
                break
    return out


def seed_000_flat_zero_outputs() -> list[dict]:
    """NK policy network, loops 3 and 4: final loss 1.15 (against 0.00002 for the working
    loops) with outputs "flat at zero for all parameters". The post-mortem prints only the
    final numbers; a report every 1 000 of the 50 000 epochs holds them (outputs at zero have
    zero spread across the parameter draws)."""
    return [{"loss": 1.15, "output_std": 0.0} for _ in range(50)]


def seed_002_divergence() -> list[dict]:
    """LSTM, lr 0.001: epoch 1 0.2847 (best), epoch 2 +42.5%, degrading to 0.4580 at epoch 5."""
    epochs = [1, 2, 3, 4, 5]
    loss = interpolate([(1, 0.2847), (2, 0.2847 * 1.425), (5, 0.4580)], epochs)
    return [{"loss": v} for v in loss]


def seed_003_dead_head() -> list[dict]:
    """Q-network, zero-initialised discrete head, reports every 10k frames up to 1023k:
    DLoss 0.00722 -> 0.01926 (+167%) while CLoss 0.01889 -> 0.01443 (-24%), GradNorm 0.000
    on every row, Agree% 38.7 / 45.1 / 40.2."""
    frames = [36 + 10 * i for i in range(99)]
    dloss = interpolate(
        [(36, 0.00722), (79, 0.01572), (165, 0.01385), (553, 0.01837), (1023, 0.01926)], frames
    )
    closs = interpolate([(36, 0.01889), (1023, 0.01443)], frames)
    agree = interpolate([(36, 38.7), (165, 45.1), (1023, 40.2)], frames)
    return [
        {"dloss": d, "closs": c, "grad_norm": 0.0, "agree": a}
        for d, c, a in zip(dloss, closs, agree)
    ]


def seed_004_explosion() -> list[dict]:
    """PPO, raw Monte-Carlo returns: value loss at iterations 10, 50, 100, 150, 200."""
    values = [998829.64, 224572.52, 88553.18, 84433.75, 87145.06]
    return [{"value_loss": v} for v in values]


def seed_004_confusion() -> list[dict]:
    """PPO evaluations every 20 iterations: TP/TN/FP/FN give the block/allow usage and F1.
    20-40 allow everything (F1 0.0), 60-80 block everything (F1 0.203), 100-300 allow."""
    rows = []
    for iteration in range(20, 301, 20):
        block_all = iteration in (60, 80)
        tp, fp = (181, 1419) if block_all else (0, 0)
        f1 = 2 * tp / (2 * tp + fp + (181 - tp)) if tp else 0.0
        blocked = (tp + fp) / 1600
        rows.append({"decision_usage": [1 - blocked, blocked], "f1": f1})
    return rows


def seed_004_stuck() -> list[dict]:
    """PPO, per-batch normalised returns: value loss stuck at 1.0 for 300 iterations
    (reported every 10)."""
    return [{"value_loss": 1.0} for _ in range(30)]


def seed_001_panic() -> list[dict]:
    """Deep Markov model, attempt 1: 'Panic' predicted 100% of the time (no normalisation)."""
    return [{"regime_usage": [0.0, 0.0, 0.0, 1.0], "loss": 3.0 - 0.01 * i} for i in range(40)]


def seed_001_uniform() -> list[dict]:
    """Attempt 2: uniform predictions, 25% each regime, entropy 1.4 (max), KL 0."""
    return [
        {"regime_usage": [0.25] * 4, "entropy": 1.386, "kl": 0.0, "loss": 3.0 - 0.005 * i}
        for i in range(60)
    ]
