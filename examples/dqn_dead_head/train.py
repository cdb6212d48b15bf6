"""Hybrid DQN with a zero-initialised discrete output layer (seed 003, "dead" discrete head).

A small re-creation of the Tempest-AI HybridDQN: a shared ReLU trunk feeds a discrete head
(discrete_fc -> discrete_out, Q-values of the 4 fire/zap combinations, trained by double-DQN
Q-learning from a replay buffer with a target network) and a continuous head (the spinner in
[-0.9, 0.9], regressed onto the spinner actions stored in the replay buffer).  Frames are played
by a mix of an expert system and the epsilon-greedy agent.  loss = w_cont * closs +
discrete_loss_weight * dloss, gradients clipped at 10.0.

The game is a ring of lanes with enemies climbing towards the rim.  The discrete choice only
decides the score of the frame (the enemy wave is scripted), so the optimal fire/zap action of a
state is known exactly; the spinner decides which lane the player is in, and so the future.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

import rescue

# ---------------------------------------------------------------------------------------------
# The game: a ring of LANES lanes; ENEMIES enemies of four kinds climb towards the rim (depth 0).
# ---------------------------------------------------------------------------------------------
LANES = 16
ENEMIES = 4
DEPTH = 10
KINDS = ("flipper", "tanker", "spiker", "fuseball")
KIND_P = (0.4, 0.25, 0.25, 0.1)  # spawn probabilities
FIRE_POINTS = np.array([1.0, 1.0, -0.5, 2.0])  # shooting a spiker hits its spike: wasted, penalised
ZAP_POINTS = np.array([1.0, 1.0, 1.0, 2.0])
NEAR = 3  # enemies at depth <= NEAR are in superzapper range
MAX_MOVE = 3  # spinner +-0.9 moves the player 3 lanes


class MiniTempest:
    """Vectorised game on n boards.  Discrete actions: 0 none, 1 zap, 2 fire, 3 fire+zap.

    The enemy wave is scripted (it does not react to shots), so a frame's fire/zap choice only
    sets that frame's score and the optimal discrete action of every state is known exactly.
    The spinner moves the player, which decides what later frames can score.
    """

    def __init__(self, n: int, rng: np.random.Generator, config: dict) -> None:
        self.n, self.rng = n, rng
        self.scores = (config["fire_miss"], config["zap_cost"])
        self.reward_scale = config["reward_scale"]
        self.frame_reward = config.get("frame_reward", 0.0)
        self.player = rng.integers(0, LANES, n)
        self.lane = rng.integers(0, LANES, (n, ENEMIES))
        self.depth = rng.integers(1, DEPTH + 1, (n, ENEMIES))
        self.kind = rng.choice(len(KINDS), size=(n, ENEMIES), p=KIND_P)

    def state(self):
        return self.player.copy(), self.lane.copy(), self.depth.copy(), self.kind.copy()

    def step(self, spin: np.ndarray, disc: np.ndarray) -> np.ndarray:
        table = discrete_rewards(*self.state(), self.scores)
        reward = (table[np.arange(self.n), disc] + self.frame_reward) * self.reward_scale
        move = np.rint(np.clip(spin, -0.9, 0.9) / 0.9 * MAX_MOVE).astype(np.int64)
        self.player = (self.player + move) % LANES
        rng, shape = self.rng, (self.n, ENEMIES)
        self.depth = self.depth - (rng.random(shape) < 0.5)
        self.lane = (self.lane + rng.choice([-1, 0, 1], size=shape, p=[0.15, 0.7, 0.15])) % LANES
        rim = self.depth <= 0  # reached the rim: a new enemy spawns at the far end
        self.lane = np.where(rim, rng.integers(0, LANES, shape), self.lane)
        self.depth = np.where(rim, DEPTH, self.depth)
        self.kind = np.where(rim, rng.choice(len(KINDS), size=shape, p=KIND_P), self.kind)
        return reward.astype(np.float32)


def discrete_rewards(player, lane, depth, kind, scores) -> np.ndarray:
    """Score of each fire/zap combination in each state, shape (n, 4).

    fire hits the closest enemy in the player's lane (FIRE_POINTS of its kind) or misses
    (fire_miss); zap scores ZAP_POINTS for every enemy within superzapper range, minus zap_cost.
    """
    fire_miss, zap_cost = scores
    in_lane = (lane - player[:, None]) % LANES == 0
    lane_depth = np.where(in_lane, depth, DEPTH + 1)
    first = np.argmin(lane_depth, axis=1)
    hit = in_lane.any(axis=1)
    fire = np.where(hit, FIRE_POINTS[kind[np.arange(len(player)), first]], fire_miss)
    zap = (ZAP_POINTS[kind] * (depth <= NEAR)).sum(axis=1) - zap_cost
    return np.stack([np.zeros_like(fire), zap, fire, fire + zap], axis=1)


def encode(player, lane, depth, kind) -> np.ndarray:
    """Per enemy, closest first: one-hot lane offset from the player, depth and kind."""
    n = player.shape[0]
    order = np.argsort(depth, axis=1, kind="stable")
    lane, depth, kind = (np.take_along_axis(x, order, axis=1) for x in (lane, depth, kind))
    off = (lane - player[:, None]) % LANES
    obs = np.zeros((n, ENEMIES, LANES + DEPTH + len(KINDS)), dtype=np.float32)
    rows, cols = np.arange(n)[:, None], np.arange(ENEMIES)[None, :]
    obs[rows, cols, off] = 1.0
    obs[rows, cols, LANES + depth - 1] = 1.0
    obs[rows, cols, LANES + DEPTH + kind] = 1.0
    return obs.reshape(n, -1)


def expert(player, lane, depth, kind, scores):
    """The expert system: the best fire/zap of the frame, spinner towards the closest enemy."""
    disc = discrete_rewards(player, lane, depth, kind, scores).argmax(axis=1)
    target = lane[np.arange(player.shape[0]), np.argmin(depth, axis=1)]
    off = (target - player + LANES // 2) % LANES - LANES // 2  # signed, in [-8, 7]
    return disc, np.clip(off / MAX_MOVE * 0.9, -0.9, 0.9).astype(np.float32)


STATE_SIZE = ENEMIES * (LANES + DEPTH + len(KINDS))
N_DISCRETE = 4


# ---------------------------------------------------------------------------------------------
# The model: HybridDQN as in the seed's aimodel.py, scaled down.
# ---------------------------------------------------------------------------------------------
class HybridDQN(nn.Module):
    def __init__(self, hidden: int, head: int, discrete_init: str) -> None:
        super().__init__()
        self.shared_layers = nn.ModuleList(
            [nn.Linear(STATE_SIZE, hidden), nn.Linear(hidden, hidden)]
        )
        for layer in self.shared_layers:
            nn.init.xavier_uniform_(layer.weight, gain=1.0)
            nn.init.constant_(layer.bias, 0.0)
        self.discrete_fc = nn.Linear(hidden, head)
        self.discrete_out = nn.Linear(head, N_DISCRETE)
        self.continuous_fc1 = nn.Linear(hidden, head)
        self.continuous_fc2 = nn.Linear(head, max(16, head // 2))
        self.continuous_out = nn.Linear(max(16, head // 2), 1)
        nn.init.xavier_uniform_(self.discrete_fc.weight, gain=1.0)
        nn.init.constant_(self.discrete_fc.bias, 0.0)
        if discrete_init == "zeros":  # "prevent action bias": the seed's bug
            nn.init.constant_(self.discrete_out.weight, 0.0)
            nn.init.constant_(self.discrete_out.bias, 0.0)
        elif discrete_init == "small_uniform":  # the seed's fix
            nn.init.uniform_(self.discrete_out.weight, -0.003, 0.003)
            nn.init.constant_(self.discrete_out.bias, 0.0)
        elif discrete_init != "default":  # default: PyTorch's kaiming-uniform Linear init
            raise ValueError(f"unknown discrete_init {discrete_init!r}")
        nn.init.xavier_normal_(self.continuous_out.weight, gain=0.1)
        nn.init.constant_(self.continuous_out.bias, 0.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shared = x
        for layer in self.shared_layers:
            shared = F.relu(layer(shared))
        discrete_q = self.discrete_out(F.relu(self.discrete_fc(shared)))
        c = F.relu(self.continuous_fc1(shared))
        c = F.relu(self.continuous_fc2(c))
        spinner = torch.tanh(self.continuous_out(c)) * 0.9
        return discrete_q, spinner


class ReplayBuffer:
    """Uniform replay of (state, discrete action, expert spinner, reward, next state)."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.s = np.zeros((capacity, STATE_SIZE), np.float32)
        self.s2 = np.zeros((capacity, STATE_SIZE), np.float32)
        self.a = np.zeros(capacity, np.int64)
        self.spin = np.zeros(capacity, np.float32)
        self.r = np.zeros(capacity, np.float32)

    def add(self, s, a, spin, r, s2) -> None:
        idx = (self.pos + np.arange(len(a))) % self.capacity
        self.s[idx], self.a[idx], self.spin[idx], self.r[idx], self.s2[idx] = s, a, spin, r, s2
        self.pos = int(idx[-1] + 1) % self.capacity
        self.size = min(self.size + len(a), self.capacity)

    def sample(self, n: int, rng: np.random.Generator):
        idx = rng.integers(0, self.size, n)
        return (
            torch.from_numpy(self.s[idx]),
            torch.from_numpy(self.a[idx]).unsqueeze(1),
            torch.from_numpy(self.spin[idx]).unsqueeze(1),
            torch.from_numpy(self.r[idx]).unsqueeze(1),
            torch.from_numpy(self.s2[idx]),
        )


def evaluation_states(config: dict):
    """A fixed set of game states (the same for every run): boards played for a while by a
    mix of the expert's and random spinner moves, with the exact best discrete action and the
    expert's spinner for each."""
    rng = np.random.default_rng(1234)
    scores = (config["fire_miss"], config["zap_cost"])
    game = MiniTempest(256, rng, config)
    states = []
    for _ in range(config["eval_states"] // 256):
        for _ in range(5):
            disc, spin = expert(*game.state(), scores)
            spin = np.where(rng.random(256) < 0.5, spin, rng.uniform(-0.9, 0.9, 256))
            game.step(spin, disc)
        states.append(game.state())
    p, lane, depth, kind = (np.concatenate(x) for x in zip(*states, strict=True))
    disc, spin = expert(p, lane, depth, kind, scores)
    x = torch.from_numpy(encode(p, lane, depth, kind))
    return x, torch.from_numpy(disc), torch.from_numpy(spin)


def train(config: dict) -> None:
    torch.set_num_threads(1)
    seed = int(config["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    scores = (config["fire_miss"], config["zap_cost"])
    n = config["n_envs"]
    game = MiniTempest(n, rng, config)
    eval_x, eval_disc, eval_spin = evaluation_states(config)

    net = HybridDQN(config["hidden"], config["head"], config["discrete_init"])
    target = HybridDQN(config["hidden"], config["head"], config["discrete_init"])
    target.load_state_dict(net.state_dict())
    optimizer = torch.optim.Adam(net.parameters(), lr=config["lr"], foreach=True)
    memory = ReplayBuffer(config["buffer_size"])
    gamma = config["gamma"]
    w_disc = config["discrete_loss_weight"]
    w_cont = config["continuous_loss_weight"]

    grad_norm = 0.0  # shown in the log, but never updated (the seed's "GradNorm 0.000" bug)
    window: dict[str, list] = {k: [] for k in ("dloss", "closs", "agree", "spin", "usage", "dead")}
    state = game.state()
    obs = encode(*state)
    update = 0
    while update < config["updates"]:
        # ---- play one frame on every board: expert frames and epsilon-greedy DQN frames -----
        e_disc, e_spin = expert(*state, scores)
        with torch.no_grad():
            q, spin = net(torch.from_numpy(obs))
        greedy = q.argmax(dim=1).numpy()  # ties (all Q equal) go to action 0
        explore = rng.random(n) < config["epsilon"]
        disc = np.where(explore, rng.integers(0, N_DISCRETE, n), greedy)
        spin = spin.squeeze(1).numpy() + rng.normal(0.0, config["spin_noise"], n)
        by_expert = rng.random(n) < config["expert_ratio"]
        disc = np.where(by_expert, e_disc, disc)
        spin = np.where(by_expert, e_spin, np.clip(spin, -0.9, 0.9))
        reward = game.step(spin, disc)
        state = game.state()
        obs2 = encode(*state)
        memory.add(obs, disc, e_spin, reward, obs2)
        obs = obs2
        if memory.size < config["learn_start"]:
            continue

        # ---- one optimiser update (the seed's train_step) ------------------------------------
        update += 1
        s, a, spin_target, r, s2 = memory.sample(config["batch_size"], rng)
        discrete_q_pred, continuous_pred = net(s)
        q_sel = discrete_q_pred.gather(1, a)
        with torch.no_grad():
            best = net(s2)[0].argmax(dim=1, keepdim=True)  # double DQN: local net selects,
            q_next = target(s2)[0].gather(1, best)  # target net evaluates
            targets = r + gamma * q_next
            adv = (r - r.mean()) / (r.std() + 1e-8)
            weights = torch.exp(adv * 0.5).clamp(0.1, 5.0)  # advantage weighting of closs
        d_loss = F.huber_loss(q_sel, targets)
        c_loss = (F.mse_loss(continuous_pred, spin_target, reduction="none") * weights).mean()
        total = w_disc * d_loss + w_cont * c_loss
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)  # result discarded (seed bug)
        optimizer.step()
        if update % config["target_update"] == 0:
            target.load_state_dict(net.state_dict())
        window["dloss"].append(d_loss.item())
        window["closs"].append(c_loss.item())

        # ---- Agree% / SpinAgr% on the fixed evaluation states, averaged over the interval ----
        if update % config["eval_every"] == 0:
            with torch.no_grad():
                hidden = eval_x
                for layer in net.shared_layers:
                    hidden = F.relu(layer(hidden))
                discrete_h = F.relu(net.discrete_fc(hidden))
                eq, es = net(eval_x)
            pred = eq.argmax(dim=1)
            window["agree"].append(100.0 * float((pred == eval_disc).float().mean()))
            close = (es.squeeze(1) - eval_spin).abs() < 0.1
            window["spin"].append(100.0 * float(close.float().mean()))
            window["usage"].append(torch.bincount(pred, minlength=N_DISCRETE).float() / len(pred))
            window["dead"].append(float(((discrete_h > 0).sum(0) == 0).float().mean()))
        if update % config["report_every"] == 0:
            rescue.report(
                dloss=float(np.mean(window["dloss"])),
                closs=float(np.mean(window["closs"])),
                grad_norm=grad_norm,
                agree=float(np.mean(window["agree"])),
                spin_agree=float(np.mean(window["spin"])),
                q_min=float(eq.min()),
                q_max=float(eq.max()),
                pred_usage=torch.stack(window["usage"]).mean(0).tolist(),
                discrete_dead_frac=float(np.mean(window["dead"])),
            )
            for values in window.values():
                values.clear()


def _parse(value: str):
    parsed = yaml.safe_load(value)
    if isinstance(parsed, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            return float(parsed)
        except ValueError:
            return parsed
    return parsed


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    with open(here / "cfg.yaml") as f:
        params = yaml.safe_load(f)["params"]
    for arg in sys.argv[1:]:
        key, _, value = arg.partition("=")
        params[key] = _parse(value)
    train(params)
