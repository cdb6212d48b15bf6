"""Healthy shape: a noisy RL return. REINFORCE with a running-mean baseline trains a small policy
network on a windy 7x7 gridworld (reach the far corner for +1; -0.05 per step; a gust moves the
agent at random 25% of the time; episodes end after 50 steps). One report per episode: its
return, which swings between failed episodes and lucky short ones while its mean rises. Every 100
episodes an evaluation over 50 episodes reports ``eval_return``."""

import random

import torch

import rescue

SIZE, MAX_STEPS, GUST = 7, 50, 0.25
MOVES = ((0, 1), (1, 0), (0, -1), (-1, 0))


def all_states():
    # one-hot row and column of every cell, row-major
    states = torch.zeros(SIZE * SIZE, 2 * SIZE)
    for r in range(SIZE):
        for c in range(SIZE):
            states[r * SIZE + c, r] = 1.0
            states[r * SIZE + c, SIZE + c] = 1.0
    return states


def episode(probs, rng):
    """One episode under the policy's action probabilities: (return, visited cells, actions)."""
    r, c, total, cells, actions = 0, 0, 0.0, [], []
    for _ in range(MAX_STEPS):
        cell = r * SIZE + c
        action = rng.choices(range(4), weights=probs[cell])[0]
        cells.append(cell)
        actions.append(action)
        move = rng.randrange(4) if rng.random() < GUST else action  # the wind takes over
        r = min(max(r + MOVES[move][0], 0), SIZE - 1)
        c = min(max(c + MOVES[move][1], 0), SIZE - 1)
        total -= 0.05
        if (r, c) == (SIZE - 1, SIZE - 1):
            return total + 1.0, cells, actions
    return total, cells, actions


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    rng = random.Random(config["seed"])
    states = all_states()
    policy = torch.nn.Sequential(
        torch.nn.Linear(2 * SIZE, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4)
    )
    opt = torch.optim.Adam(policy.parameters(), lr=config["lr"])
    baseline = None
    for ep in range(config["episodes"]):
        # the policy is fixed within an episode: its log-probabilities for every cell at once
        log_probs = policy(states).log_softmax(-1)
        probs = log_probs.exp().tolist()
        ret, cells, actions = episode(probs, rng)
        baseline = ret if baseline is None else 0.95 * baseline + 0.05 * ret
        loss = -(ret - baseline) * log_probs[cells, actions].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        metrics = {"return": ret}
        if (ep + 1) % 100 == 0:
            with torch.no_grad():
                probs = policy(states).softmax(-1).tolist()
            evals = [episode(probs, rng)[0] for _ in range(config["eval_episodes"])]
            metrics["eval_return"] = sum(evals) / len(evals)
        rescue.report(**metrics)


if __name__ == "__main__":
    train({"lr": 0.003, "episodes": 400, "eval_episodes": 50, "seed": 0})
