"""Seed 003: a Q-network with a shared trunk, a discrete head (which lane to fire at) and a
continuous head (the spinner that moves the player), trained by Q-learning with a replay
buffer, a target network and epsilon-greedy exploration on a small Tempest-like game.

With ``head_init: zeros`` the discrete head starts with all weights and biases at zero. Its
hidden units sit behind a ReLU, so they output 0 and pass back no gradient; the output layer's
weights multiply those zeros and get none either. Only the output biases learn: the head
answers with one value per lane whatever the state. Its loss (``d_loss``) rises while the
continuous head's (``c_loss``) falls: the better the spinner puts the player in the threat's
lane, the more often a shot is scored, and the head cannot tell a kill from a wasted shot.

The logged ``grad_norm`` is read after ``optimizer.zero_grad()``, so it is 0 at every report,
like the seed's GradNorm column: an instrumentation bug, not a dead network.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import yaml

import rescue

ALIGNED = 0.25  # the player stands in a lane within this distance of its centre
SPEED = 0.05  # enemies climb one twentieth of a lane per step


class Lanes:
    """A batch of games. Enemies climb K lanes towards the rim (depth 1 -> 0); the player sits
    at ``x`` in [-1, 1]. Each step the cannon fires down one lane and the spinner moves the
    player by up to 0.5. While the player stands in the lane of the nearest enemy (the threat),
    a shot down that lane destroys it (discrete reward +1) and a shot down any other lane is
    wasted (-1); elsewhere a shot scores 0. The spinner's reward is minus the distance to the
    threat's lane. Destroyed enemies and enemies that reach the rim come back at the bottom of
    their lane. The game is deterministic given the actions, so a healthy Q-head can fit its
    targets closely."""

    def __init__(self, n: int, lanes: int, gen: torch.Generator) -> None:
        self.n, self.lanes = n, lanes
        self.centres = torch.linspace(-0.75, 0.75, lanes)
        self.x = 2 * torch.rand(n, generator=gen) - 1
        self.depth = torch.rand(n, lanes, generator=gen)

    def obs(self) -> torch.Tensor:
        return observe(self.x, self.depth)

    def step(self, fire: torch.Tensor, spin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        threat = self.depth.argmin(1)
        in_lane = (self.x - self.centres[threat]).abs() < ALIGNED
        hit = (fire == threat) & in_lane
        self.x = (self.x + 0.5 * spin).clamp(-1, 1)
        miss = (self.x - self.centres[threat]).abs()
        killed = torch.nn.functional.one_hot(threat, self.lanes).bool() & hit[:, None]
        self.depth = self.depth - SPEED
        self.depth[killed | (self.depth <= 0)] = 1.0
        return in_lane * (2 * hit.float() - 1), -miss


def observe(x: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    return torch.cat([x[:, None], 2 * depth - 1], dim=1)


class HybridQNet(torch.nn.Module):
    """Shared trunk; discrete head: Q(s, lane); continuous head (normalised advantage
    function): Q(s, u) = V(s) - P(s) (u - mu(s))^2, so the best spin is mu(s) and
    max_u Q(s, u) = V(s)."""

    def __init__(self, obs: int, lanes: int, hidden: int, head_init: str) -> None:
        super().__init__()
        self.trunk = torch.nn.Sequential(
            torch.nn.Linear(obs, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
        )
        half = hidden // 2
        self.discrete = torch.nn.Sequential(
            torch.nn.Linear(hidden, half), torch.nn.ReLU(), torch.nn.Linear(half, lanes)
        )
        self.continuous = torch.nn.Sequential(
            torch.nn.Linear(hidden, half), torch.nn.ReLU(), torch.nn.Linear(half, 3)
        )
        init_head(self.discrete, head_init)

    def forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(s)
        return self.discrete(h), self.continuous(h)


def init_head(head: torch.nn.Sequential, how: str) -> None:
    for layer in head:
        if not isinstance(layer, torch.nn.Linear):
            continue
        if how == "zeros":
            torch.nn.init.zeros_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
        elif how == "small_uniform":  # the seed's fix: small random weights, zero bias
            torch.nn.init.uniform_(layer.weight, -0.003, 0.003)
            torch.nn.init.zeros_(layer.bias)
        elif how == "xavier":
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
        elif how != "default":  # default: PyTorch's own initialisation
            raise ValueError(f"unknown head_init {how!r}")


def naf(cont: torch.Tensor, spin: torch.Tensor) -> torch.Tensor:
    value, mu, precision = continuous_parts(cont)
    return value - precision * (spin - mu) ** 2


def continuous_parts(cont: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return cont[:, 0], torch.tanh(cont[:, 1]), torch.nn.functional.softplus(cont[:, 2])


class Replay:
    """A ring buffer of (state, lane, spin, discrete reward, continuous reward, next state)."""

    def __init__(self, capacity: int, obs: int) -> None:
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.s = torch.zeros(capacity, obs)
        self.s2 = torch.zeros(capacity, obs)
        self.fire = torch.zeros(capacity, dtype=torch.long)
        self.spin, self.r_d, self.r_c = (torch.zeros(capacity) for _ in range(3))

    def add(self, *transition: torch.Tensor) -> None:
        s, fire, spin, r_d, r_c, s2 = transition
        idx = (self.pos + torch.arange(len(s))) % self.capacity
        self.s[idx], self.fire[idx], self.spin[idx] = s, fire, spin
        self.r_d[idx], self.r_c[idx], self.s2[idx] = r_d, r_c, s2
        self.pos = (self.pos + len(s)) % self.capacity
        self.size = min(self.size + len(s), self.capacity)

    def sample(self, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        i = torch.randint(self.size, (batch,), generator=gen)
        return self.s[i], self.fire[i], self.spin[i], self.r_d[i], self.r_c[i], self.s2[i]


def grad_norm_of(model: torch.nn.Module) -> float:
    grads = [p.grad.norm() for p in model.parameters() if p.grad is not None]
    return float(torch.stack(grads).norm()) if grads else 0.0


def train(config: dict) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    gen = torch.Generator().manual_seed(config["seed"])
    lanes, steps, gamma = config["lanes"], config["steps"], config["gamma"]
    env = Lanes(config["envs"], lanes, gen)
    obs_dim = 1 + lanes
    net = HybridQNet(obs_dim, lanes, config["hidden"], config["head_init"])
    target = HybridQNet(obs_dim, lanes, config["hidden"], "default")
    target.load_state_dict(net.state_dict())
    opt = torch.optim.Adam(net.parameters(), lr=config["lr"])
    watch = rescue.watch(net, opt)
    replay = Replay(config["buffer"], obs_dim)

    # Held-out states (fixed seed, independent of the run's seed) and the reference policy:
    # spin towards the nearest enemy's lane, fire down it. The shot is scored where it decides
    # the reward, with the player in that lane; the spin where the way to go is clear.
    ev = torch.Generator().manual_seed(3003)
    n_eval = config["n_eval"]
    ev_depth = torch.rand(n_eval, lanes, generator=ev)
    ev_lane = ev_depth.argmin(1)
    ev_x = 2 * torch.rand(n_eval, generator=ev) - 1
    ev_dir = (env.centres[ev_lane] - ev_x).sign()
    ev_moves = (env.centres[ev_lane] - ev_x).abs() > 0.1
    ev_s = observe(ev_x, ev_depth)
    ev_x_in_lane = env.centres[ev_lane] + ALIGNED * (2 * torch.rand(n_eval, generator=ev) - 1)
    ev_fire_s = observe(ev_x_in_lane, ev_depth)

    d_losses, c_losses, norms, rewards = [], [], [], []
    for step in range(steps):
        eps = max(config["eps_end"], 1 - step / config["eps_steps"])
        s = env.obs()
        with torch.no_grad():
            q_d, cont = net(s)
        explore = torch.rand(env.n, generator=gen) < eps
        fire = torch.where(explore, torch.randint(lanes, (env.n,), generator=gen), q_d.argmax(1))
        mu = continuous_parts(cont)[1]
        spin = torch.where(explore, 2 * torch.rand(env.n, generator=gen) - 1, mu)
        r_d, r_c = env.step(fire, spin)
        replay.add(s, fire, spin, r_d, r_c, env.obs())
        rewards.append(float((r_d + r_c).mean()))
        if replay.size < config["batch"]:
            continue

        bs, bfire, bspin, br_d, br_c, bs2 = replay.sample(config["batch"], gen)
        q_d, cont = net(bs)
        with torch.no_grad():
            q_d2, cont2 = target(bs2)
            d_target = br_d + gamma * q_d2.max(1).values
            c_target = br_c + gamma * continuous_parts(cont2)[0]
        d_loss = torch.nn.functional.mse_loss(q_d.gather(1, bfire[:, None])[:, 0], d_target)
        c_loss = torch.nn.functional.mse_loss(naf(cont, bspin), c_target)
        loss = c_loss + config["d_weight"] * d_loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), config["clip"])
        opt.step()
        opt.zero_grad()
        norms.append(grad_norm_of(net))  # the logging bug, kept: read after zero_grad, so 0
        d_losses.append(d_loss.item())
        c_losses.append(c_loss.item())
        if (step + 1) % config["target_every"] == 0:
            target.load_state_dict(net.state_dict())

        if (step + 1) % config["eval_every"] == 0:
            with torch.no_grad():
                ev_mu = continuous_parts(net(ev_s)[1])[1]
                ev_q = net(ev_fire_s)[0]
            rescue.report(
                d_loss=sum(d_losses) / len(d_losses),
                c_loss=sum(c_losses) / len(c_losses),
                grad_norm=sum(norms) / len(norms),
                discrete_agree=float((ev_q.argmax(1) == ev_lane).float().mean()),
                spin_agree=float((ev_mu.sign() == ev_dir)[ev_moves].float().mean()),
                reward=sum(rewards) / len(rewards),
                q_range=float(ev_q.max() - ev_q.min()),
            )
            d_losses, c_losses, norms, rewards = [], [], [], []
    if watch is not None:
        watch.close()


if __name__ == "__main__":
    params = yaml.safe_load((Path(__file__).parent / "cfg.yaml").read_text())["params"]
    for arg in sys.argv[1:]:
        key, _, value = arg.partition("=")
        params[key] = yaml.safe_load(value)
    train(params)
