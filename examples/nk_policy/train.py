"""Neural-network policy functions for the 3-equation New Keynesian model.

A small re-creation of the training set-up of Kase, Melosi and Rottner (2025), proof of
concept 1: one MLP maps the state (the natural rate of interest zeta) and the structural
parameters (beta, sigma, eta, phi, phi_pi, phi_y, rho, sigma_A, drawn from uniform priors)
to the output gap X and inflation Pi. It is trained on the equilibrium conditions alone:

    IS curve       X = E X' - (phi_pi Pi + phi_y X - E Pi' - zeta) / sigma
    Phillips curve Pi = kappa X + beta E Pi'
    state          zeta' = rho zeta + sigma_A sigma (rho - 1) omega eps,   eps ~ N(0, 1)

with the expectations taken by antithetic Monte-Carlo over next-period shocks. The loss is
lam_x * mean(IS residual^2) + lam_pi * mean(Phillips residual^2), residuals in percentage
points. The linear model has a closed-form solution X = a zeta, Pi = b zeta, used only to
score the network (``policy_error``), never to train it.

The training loop is the one from the post-mortem: the parameter batch is redrawn every
``redraw_every`` iterations, the state is re-initialised from its ergodic distribution at
each redraw and stepped forward ``num_steps`` times every iteration in between.

Shipped settings (redraw_every=100, lam_pi=0.1) miss the 5 % policy-error target because the
down-weighted Phillips-curve residual is fitted slowly; see README.md for which setting
matters (at this scale lam_pi does, redraw_every does not).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
import yaml

import rescue

# Structural parameters and their uniform priors (the ranges of Kase, Melosi, Rottner 2025).
PRIORS = {
    "beta": (0.95, 0.99),  # discount factor
    "sigma": (1.0, 3.0),  # relative risk aversion
    "eta": (0.25, 2.0),  # inverse Frisch elasticity
    "phi": (0.5, 0.9),  # Calvo price duration
    "phi_pi": (1.25, 2.5),  # Taylor-rule inflation response
    "phi_y": (0.0, 0.5),  # Taylor-rule output-gap response
    "rho": (0.8, 0.95),  # persistence of the natural-rate shock
    "sigma_a": (0.02, 0.1),  # std of the TFP innovation
}
NAMES = list(PRIORS)
LOW = torch.tensor([PRIORS[k][0] for k in NAMES])
HIGH = torch.tensor([PRIORS[k][1] for k in NAMES])


def col(par: torch.Tensor, name: str) -> torch.Tensor:
    i = NAMES.index(name)
    return par[..., i : i + 1]


def draw_parameters(n: int, gen: torch.Generator) -> torch.Tensor:
    return LOW + (HIGH - LOW) * torch.rand(n, len(NAMES), generator=gen)


def steady_state(par: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """kappa (Phillips-curve slope) and omega (natural-rate loading of TFP)."""
    beta, sigma, eta, phi = (col(par, k) for k in ("beta", "sigma", "eta", "phi"))
    kappa = (1 - phi) * (1 - phi * beta) * (sigma + eta) / phi
    omega = (1 + eta) / (sigma + eta)
    return kappa, omega


def innovation_std(par: torch.Tensor) -> torch.Tensor:
    """Std of the natural-rate innovation; zeta' = rho zeta + innovation_std * eps."""
    _, omega = steady_state(par)
    return (col(par, "sigma_a") * col(par, "sigma") * (1 - col(par, "rho")) * omega).abs()


def ergodic_std(par: torch.Tensor) -> torch.Tensor:
    rho = col(par, "rho")
    return innovation_std(par) / torch.sqrt(1 - rho * rho)


def initialize_state(par: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """zeta drawn from its ergodic distribution given each row's parameters."""
    return torch.randn(par.shape[0], 1, generator=gen) * ergodic_std(par)


def analytic_policy(par: torch.Tensor, zeta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Method of undetermined coefficients: X = a zeta, Pi = b zeta."""
    kappa, _ = steady_state(par)
    beta, sigma, rho = col(par, "beta"), col(par, "sigma"), col(par, "rho")
    denom = (sigma * (1 - rho) + col(par, "phi_y")) * (1 - beta * rho) + kappa * (
        col(par, "phi_pi") - rho
    )
    return (1 - beta * rho) * zeta / denom, kappa * zeta / denom


class PolicyNet(torch.nn.Module):
    """Normalise (zeta, parameters) to [-1, 1], MLP with CELU, outputs scaled by 1/100."""

    def __init__(self, hidden: int, layers: int, zeta_bound: float) -> None:
        super().__init__()
        self.register_buffer("lb", torch.cat([torch.tensor([-zeta_bound]), LOW]))
        self.register_buffer("ub", torch.cat([torch.tensor([zeta_bound]), HIGH]))
        mods: list[torch.nn.Module] = [torch.nn.Linear(1 + len(NAMES), hidden), torch.nn.CELU()]
        for _ in range(layers - 1):
            mods += [torch.nn.Linear(hidden, hidden), torch.nn.CELU()]
        mods.append(torch.nn.Linear(hidden, 2))
        self.mlp = torch.nn.Sequential(*mods)

    def forward(self, zeta: torch.Tensor, par: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([zeta, par.expand(*zeta.shape[:-1], par.shape[-1])], dim=-1)
        out = self.mlp(2 * (x - self.lb) / (self.ub - self.lb) - 1) / 100
        return out[..., 0:1], out[..., 1:2]


class Economy:
    """A batch of parameter draws with the derived coefficients the equations need."""

    def __init__(self, par: torch.Tensor) -> None:
        self.par = par
        self.kappa, _ = steady_state(par)
        self.beta, self.sigma, self.rho = col(par, "beta"), col(par, "sigma"), col(par, "rho")
        self.phi_pi, self.phi_y = col(par, "phi_pi"), col(par, "phi_y")
        self.innov = innovation_std(par)
        self.ergodic = ergodic_std(par)

    def step(self, zeta: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return self.rho * zeta + eps * self.innov


def residuals(
    net: PolicyNet, zeta: torch.Tensor, eco: Economy, eps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean squared IS and Phillips-curve residuals, in (percentage points)^2."""
    # One forward pass over today's state (row 0) and the mc next-period states (rows 1..mc).
    x_all, pi_all = net(torch.cat([zeta.unsqueeze(0), eco.step(zeta, eps)]), eco.par)
    x, pi = x_all[0], pi_all[0]
    ex_next, epi_next = x_all[1:].mean(0), pi_all[1:].mean(0)
    taylor = eco.phi_pi * pi + eco.phi_y * x
    is_res = x - (ex_next - (taylor - epi_next - zeta) / eco.sigma)
    pc_res = pi - (eco.kappa * x + eco.beta * epi_next)
    return (100 * is_res).pow(2).mean(), (100 * pc_res).pow(2).mean()


def antithetic(mc: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    half = torch.randn(max(mc // 2, 1), batch, 1, generator=gen)
    return torch.cat([half, -half], dim=0)


def train(config: dict) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    gen = torch.Generator().manual_seed(config["seed"])
    batch, mc = config["batch"], config["mc"]
    lam_x, lam_pi = config["lam_x"], config["lam_pi"]

    net = PolicyNet(config["hidden"], config["layers"], config["zeta_bound"])
    opt = torch.optim.AdamW(net.parameters(), lr=config["lr"], foreach=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=config["iterations"], eta_min=config["eta_min"]
    )

    # Held-out set (fixed seed, independent of the run's seed): parameters from the priors,
    # states from their ergodic distribution, shocks for the expectations.
    ev = torch.Generator().manual_seed(20250101)
    n_eval = config["n_eval"]
    ev_eco = Economy(draw_parameters(n_eval, ev))
    ev_par = ev_eco.par
    ev_zeta = initialize_state(ev_par, ev)
    ev_eps = antithetic(mc, n_eval, ev)
    z_test = torch.full((n_eval, 1), 0.01)
    x_true, pi_true = analytic_policy(ev_par, z_test)

    eco, zeta = None, None
    for it in range(config["iterations"]):
        if eco is None or it % config["redraw_every"] == 0:
            eco = Economy(draw_parameters(batch, gen))
            zeta = initialize_state(eco.par, gen)
        for _ in range(config["num_steps"]):
            zeta = eco.step(zeta, torch.randn(batch, 1, generator=gen))

        for _ in range(config["internal"]):
            opt.zero_grad()
            is_sq, pc_sq = residuals(net, zeta, eco, antithetic(mc, batch, gen))
            loss = lam_x * is_sq + lam_pi * pc_sq
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), config["clip"])
            opt.step()
        sched.step()

        if (it + 1) % config["eval_every"] == 0:
            with torch.no_grad():
                v_is, v_pc = residuals(net, ev_zeta, ev_eco, ev_eps)
                x_hat, pi_hat = net(z_test, ev_par)
                x_err = ((x_hat - x_true).abs() / x_true.abs()).mean().item()
                pi_err = ((pi_hat - pi_true).abs() / pi_true.abs()).mean().item()
                x_ev, pi_ev = net(ev_zeta, ev_par)
                state_ratio = (zeta / eco.ergodic).pow(2).mean().sqrt().item()
            rescue.report(
                loss=loss.item(),
                val_loss=(lam_x * v_is + lam_pi * v_pc).item(),
                val_is_loss=v_is.item(),
                val_nkpc_loss=v_pc.item(),
                policy_error=0.5 * (x_err + pi_err),
                x_error=x_err,
                pi_error=pi_err,
                output_std=0.5 * (x_ev.std() + pi_ev.std()).item() * 100,
                state_ergodic_ratio=state_ratio,
            )
            if not math.isfinite(loss.item()):
                return


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    params = yaml.safe_load((here / "cfg.yaml").read_text())["params"]
    for arg in sys.argv[1:]:
        key, _, value = arg.partition("=")
        params[key] = yaml.safe_load(value)
    train(params)
