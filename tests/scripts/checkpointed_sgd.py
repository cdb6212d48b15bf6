"""The model and data of sgd_regression.py, trained in epochs of ``steps_per_epoch`` SGD steps
with one report per epoch and a checkpoint every ``checkpoint_every`` epochs: model, optimizer,
random state and epoch, so that a run given one goes on exactly where it was saved.

Each report carries ``epoch``, which comes from the checkpoint when the run starts from one:
a run that went on from its checkpoint reports epochs that continue the saved one's."""

import time

import torch

import rescue


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config.get("seed", 0))
    x = torch.randn(256, 8)
    y = torch.tanh(x @ torch.randn(8, 1)) + 0.05 * torch.randn(256, 1)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    first = 0
    saved = rescue.get_checkpoint()
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        for group in opt.param_groups:  # the config's learning rate, not the saved one
            group["lr"] = config["lr"]
        torch.set_rng_state(saved["rng"])
        first = saved["epoch"] + 1
    for epoch in range(first, config["epochs"]):
        for _ in range(config.get("steps_per_epoch", 10)):
            idx = torch.randint(0, 256, (32,))
            loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        time.sleep(config.get("epoch_seconds", 0.0))  # paces the reports for a kill mid-run
        with torch.no_grad():
            full = torch.nn.functional.mse_loss(model(x), y)
        checkpoint = None
        if (epoch + 1) % config["checkpoint_every"] == 0:
            checkpoint = {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "rng": torch.get_rng_state(),
                "epoch": epoch,
            }
        rescue.report({"loss": float(full), "epoch": epoch}, checkpoint=checkpoint)


if __name__ == "__main__":
    train({"lr": 0.05, "epochs": 30, "checkpoint_every": 5})
