"""An MLP fitted by SGD with momentum to a noisy regression (unstable above a learning rate of
about 0.1), that notes when it enters ``train`` and when it reports, in ``timing`` (a file
path; one line per event: the run, the event, the wall time), so that the gap between one run's
last report and the next run's start can be read from outside Ray."""

import os
import time

import torch

import rescue


def train(config):
    # A line at a time: a stop may come at any moment.
    with open(config["timing"], "a", buffering=1) as log:
        _train(config, log)


def _train(config, log):
    run = f"{os.getpid()}.{time.monotonic_ns()}"  # a process may serve more than one run
    log.write(f"{run} start {time.time()}\n")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = torch.tanh(x @ torch.randn(8, 1)) + 0.05 * torch.randn(256, 1)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    for step in range(config["steps"]):
        idx = torch.randint(0, 256, (32,))
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 5 == 0:
            with torch.no_grad():
                full = float(torch.nn.functional.mse_loss(model(x), y))
            log.write(f"{run} report {time.time()}\n")
            rescue.report(loss=full)
        time.sleep(config["step_seconds"])
