"""A small real training run for integration tests: an MLP fitted by plain SGD to a noisy
regression problem. Above a learning rate of about 0.1 the SGD iteration is unstable on this
problem and the loss climbs; below it the loss falls under 0.05.

``hang_once``: a file path; the first run to reach step 100 creates it and hangs there, as a
data loader on a stuck file system would; a later run finds the file and goes on.

``timing``: a file path; the run notes when it enters ``train`` and when it reports there, a
line an event (the run, the event, the wall time), for bench/restart_gap.py."""

import contextlib
import os
import time
from pathlib import Path

import torch

import rescue


def train(config):
    with contextlib.ExitStack() as stack:
        log = None
        if config.get("timing"):  # a line at a time: a stop may come at any moment
            log = stack.enter_context(open(config["timing"], "a", buffering=1))
        _train(config, log)


def _train(config, log):
    run = f"{os.getpid()}.{time.monotonic_ns()}"  # a process may serve more than one run
    if log:
        log.write(f"{run} start {time.time()}\n")
    torch.set_num_threads(1)
    torch.manual_seed(config.get("seed", 0))
    x = torch.randn(256, 8)
    w = torch.randn(8, 1)
    y = torch.tanh(x @ w) + 0.05 * torch.randn(256, 1)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    for step in range(config["steps"]):
        idx = torch.randint(0, 256, (32,))
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % config.get("report_every", 5) == 0:
            with torch.no_grad():
                full = torch.nn.functional.mse_loss(model(x), y)
            if log:
                log.write(f"{run} report {time.time()}\n")
            rescue.report(loss=float(full))
        time.sleep(config.get("step_seconds", 0))  # a bigger model's step takes this long
        marker = config.get("hang_once")
        if marker and step == 100 and not Path(marker).exists():
            Path(marker).touch()
            time.sleep(3600)
        if config.get("crash_at") is not None and step == config["crash_at"]:
            raise RuntimeError(f"simulated data-loader failure at step {step}")


if __name__ == "__main__":
    train({"lr": 0.01, "steps": 300})
