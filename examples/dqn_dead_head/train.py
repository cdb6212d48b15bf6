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
from collections import deque
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

import rescue

# ---------------------------------------------------------------------------------------------
# The game: a ring of LANES lanes, ENEMIES enemies climbing towards the rim (depth 0).
# ---------------------------------------------------------------------------------------------
LANES = 16
ENEMIES = 3
DEPTH = 10
NEAR = 3  # an enemy at depth <= NEAR is "near the rim": a superzap gets it
MAX_MOVE = 3  # spinner 0.9 moves the player ~3 lanes


class MiniTempest:
    """Vectorised game: n parallel boards. Discrete actions: 0 none, 1 fire, 2 zap, 3 fire+zap."""

    def __init__(self, n: int, rng: np.random.Generator, cfg: dict) -> None:
        self.n, self.rng = n, rng
        self.fire_hit = cfg["fire_hit"]
        self.fire_miss = cfg["fire_miss"]
        self.zap_per_kill = cfg["zap_per_kill"]
        self.zap_cost = cfg["zap_cost"]
        self.reward_scale = cfg["reward_scale"]
        self.player = rng.integers(0, LANES, n)
        self.lane = rng.integers(0, LANES, (n, ENEMIES))
        self.depth = rng.integers(1, DEPTH + 1, (n, ENEMIES))

    def state(self):
        return self.player.copy(), self.lane.copy(), self.depth.copy()

    def discrete_reward(self, disc: np.ndarray) -> np.ndarray:
        return discrete_rewards(self.player, self.lane, self.depth, self.cfg_tuple())[
            np.arange(self.n), disc
        ]

    def cfg_tuple(self):
        return self.fire_hit, self.fire_miss, self.zap_per_kill, self.zap_cost

    def step(self, spin: np.ndarray, disc: np.ndarray) -> np.ndarray:
        reward = self.discrete_reward(disc) * self.reward_scale
        move = np.rint(np.clip(spin, -0.9, 0.9) / 0.9 * MAX_MOVE).astype(np.int64)
        self.player = (self.player + move) % LANES
        rng = self.rng
        advance = rng.random((self.n, ENEMIES)) < 0.5
        self.depth = self.depth - advance
        drift = rng.choice([-1, 0, 1], size=(self.n, ENEMIES), p=[0.15, 0.7, 0.15])
        self.lane = (self.lane + drift) % LANES
        rim = self.depth <= 0
        self.lane = np.where(rim, rng.integers(0, LANES, (self.n, ENEMIES)), self.lane)
        self.depth = np.where(rim, DEPTH, self.depth)
        return reward.astype(np.float32)


def discrete_rewards(player, lane, depth, cfg) -> np.ndarray:
    """Score of each fire/zap combination in each state, shape (n, 4)."""
    fire_hit, fire_miss, zap_per_kill, zap_cost = cfg
    in_lane = ((lane - player[:, None]) % LANES == 0).any(axis=1)
    near = (depth <= NEAR).sum(axis=1)
    fire = np.where(in_lane, fire_hit, fire_miss)
    zap = zap_per_kill * near - zap_cost
    zero = np.zeros_like(fire, dtype=np.float64)
    return np.stack([zero, fire, zap, fire + zap], axis=1)


def encode(player, lane, depth) -> np.ndarray:
    """Per enemy (sorted by depth): one-hot lane offset from the player and one-hot depth."""
    n = player.shape[0]
    order = np.argsort(depth, axis=1, kind="stable")
    lane = np.take_along_axis(lane, order, axis=1)
    depth = np.take_along_axis(depth, order, axis=1)
    off = (lane - player[:, None]) % LANES
    obs = np.zeros((n, ENEMIES, LANES + DEPTH), dtype=np.float32)
    rows = np.arange(n)[:, None]
    cols = np.arange(ENEMIES)[None, :]
    obs[rows, cols, off] = 1.0
    obs[rows, cols, LANES + depth - 1] = 1.0
    return obs.reshape(n, -1)


def expert(player, lane, depth, cfg):
    """The expert system: optimal fire/zap for this frame, spinner towards the closest enemy."""
    disc = discrete_rewards(player, lane, depth, cfg).argmax(axis=1)
    idx = np.argmin(depth, axis=1)
    target = lane[np.arange(player.shape[0]), idx]
    off = (target - player + LANES // 2) % LANES - LANES // 2  # signed, in [-8, 7]
    spin = np.clip(off / MAX_MOVE * 0.9, -0.9, 0.9)
    return disc, spin.astype(np.float32)


STATE_SIZE = ENEMIES * (LANES + DEPTH)
N_DISCRETE = 4


# ---------------------------------------------------------------------------------------------
# The model: HybridDQN as in the seed's aimodel.py, scaled down.
# ---------------------------------------------------------------------------------------------
class HybridDQN(nn.Module):
    def __init__(self, hidden: int, head: int, discrete_init: str) -> None:
        super().__init__()
        self.shared_layers = nn.ModuleList([nn.Linear(STATE_SIZE, hidden), nn.Linear(hidden, hidden)])
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
    def __init__(self, capacity: int) -> None:
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.s = np.zeros((capacity, STATE_SIZE), np.float32)
        self.s2 = np.zeros((capacity, STATE_SIZE), np.float32)
        self.a = np.zeros(capacity, np.int64)
        self.c = np.zeros(capacity, np.float32)
        self.r = np.zeros(capacity, np.float32)
        self.expert = np.zeros(capacity, bool)

    def add(self, s, a, c, r, s2, is_expert) -> None:
        idx = (self.pos + np.arange(len(a))) % self.capacity
        self.s[idx], self.a[idx], self.c[idx], self.r[idx], self.s2[idx] = s, a, c, r, s2
        self.expert[idx] = is_expert
        self.pos = int(idx[-1] + 1) % self.capacity
        self.size = min(self.size + len(a), self.capacity)

    def sample(self, n: int, rng: np.random.Generator):
        idx = rng.integers(0, self.size, n)
        return (
            torch.from_numpy(self.s[idx]),
            torch.from_numpy(self.a[idx]).unsqueeze(1),
            torch.from_numpy(self.c[idx]).unsqueeze(1),
            torch.from_numpy(self.r[idx]).unsqueeze(1),
            torch.from_numpy(self.s2[idx]),
            self.expert[idx],
        )


def train(config: dict) -> None:
    torch.set_num_threads(1)
    seed = int(config["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    cfg = (config["fire_hit"], config["fire_miss"], config["zap_per_kill"], config["zap_cost"])
    env = MiniTempest(config["n_envs"], rng, config)

    # Fixed evaluation states (same for every run): frames of expert play from a fixed seed.
    eval_rng = np.random.default_rng(1234)
    eval_env = MiniTempest(256, eval_rng, config)
    ev = []
    for _ in range(config["eval_states"] // 256):
        for _ in range(5):
            d, sp = expert(*eval_env.state(), cfg)
            mix = eval_rng.random(256) < 0.5
            sp = np.where(mix, sp, eval_rng.uniform(-0.9, 0.9, 256)).astype(np.float32)
            eval_env.step(sp, d)
        ev.append(eval_env.state())
    ev_p, ev_l, ev_d = (np.concatenate(x) for x in zip(*ev, strict=True))
    eval_x = torch.from_numpy(encode(ev_p, ev_l, ev_d))
    eval_disc, eval_spin = expert(ev_p, ev_l, ev_d, cfg)
    eval_disc_t = torch.from_numpy(eval_disc)
    eval_spin_t = torch.from_numpy(eval_spin)

    net = HybridDQN(config["hidden"], config["head"], config["discrete_init"])
    target = HybridDQN(config["hidden"], config["head"], config["discrete_init"])
    target.load_state_dict(net.state_dict())
    optimizer = torch.optim.Adam(net.parameters(), lr=config["lr"])
    memory = ReplayBuffer(config["buffer_size"])
    gamma = config["gamma"]
    w_disc = config["discrete_loss_weight"]
    w_cont = config["continuous_loss_weight"]
    batch_size = config["batch_size"]

    grad_norm = 0.0  # shown in the log, but never updated (the seed's GradNorm 0.000 bug)
    d_hist: deque = deque(maxlen=config["report_every"])
    c_hist: deque = deque(maxlen=config["report_every"])
    state = env.state()
    obs = encode(*state)
    n = config["n_envs"]
    for update in range(1, config["updates"] + 1):
        # ---- act: expert frames and epsilon-greedy DQN frames --------------------------------
        e_disc, e_spin = expert(*state, cfg)
        with torch.no_grad():
            q, spin = net(torch.from_numpy(obs))
        greedy = q.argmax(dim=1).numpy()
        explore = rng.random(n) < config["epsilon"]
        d_disc = np.where(explore, rng.integers(0, N_DISCRETE, n), greedy)
        noise = rng.normal(0.0, config["spin_noise"], n)
        d_spin = np.clip(spin.squeeze(1).numpy() + noise, -0.9, 0.9).astype(np.float32)
        is_expert = rng.random(n) < config["expert_ratio"]
        disc = np.where(is_expert, e_disc, d_disc)
        spin_a = np.where(is_expert, e_spin, d_spin)
        reward = env.step(spin_a, disc)
        state = env.state()
        obs2 = encode(*state)
        memory.add(obs, disc, spin_a, reward, obs2, is_expert)
        obs = obs2

        if memory.size < config["learn_start"]:
            continue
        # ---- one optimiser update (training.py train_step) -----------------------------------
        s, a, c, r, s2, exp_mask = memory.sample(batch_size, rng)
        discrete_q_pred, continuous_pred = net(s)
        q_sel = discrete_q_pred.gather(1, a)
        with torch.no_grad():
            best = net(s2)[0].argmax(dim=1, keepdim=True)  # double DQN: local net selects
            q_next = target(s2)[0].gather(1, best)
            targets = r + gamma * q_next
            adv = (r - r.mean()) / (r.std() + 1e-8)
            weights = torch.exp(adv * 0.5).clamp(0.1, 5.0)
        d_loss = F.huber_loss(q_sel, targets)
        c_loss = (F.mse_loss(continuous_pred, c, reduction="none") * weights).mean()
        total = w_disc * d_loss + w_cont * c_loss
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)  # result discarded (seed bug)
        optimizer.step()
        if update % config["target_update"] == 0:
            target.load_state_dict(net.state_dict())
        d_hist.append(d_loss.item())
        c_hist.append(c_loss.item())

        if update % config["report_every"] == 0:
            with torch.no_grad():
                eq, es = net(eval_x)
            pred = eq.argmax(dim=1)
            agree = 100.0 * float((pred == eval_disc_t).float().mean())
            spin_agree = 100.0 * float(((es.squeeze(1) - eval_spin_t).abs() < 0.1).float().mean())
            usage = torch.bincount(pred, minlength=N_DISCRETE).float() / len(pred)
            rescue.report(
                dloss=float(np.mean(d_hist)),
                closs=float(np.mean(c_hist)),
                grad_norm=grad_norm,
                agree=agree,
                spin_agree=spin_agree,
                q_min=float(eq.min()),
                q_max=float(eq.max()),
                pred_usage=usage.tolist(),
            )


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    with open(here / "cfg.yaml") as f:
        params = yaml.safe_load(f)["params"]
    for arg in sys.argv[1:]:
        key, _, value = arg.partition("=")
        params[key] = yaml.safe_load(value)
    train(params)
