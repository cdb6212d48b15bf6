"""Healthy shape: a curriculum rise. An MLP learns a sum of nonlinear terms of its inputs; the
curriculum starts with 2 active terms and adds 2 more at each of ``stages`` steps. At each new
stage the targets suddenly hold variance the network has not fitted, so the loss jumps; it then
falls again as the new terms are learned."""

import torch

import rescue


def targets(x, active):
    return torch.sin(2.0 * x[:, :active]).sum(1, keepdim=True)


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    dim = 8
    model = torch.nn.Sequential(
        torch.nn.Linear(dim, 128),
        torch.nn.Tanh(),
        torch.nn.Linear(128, 1),
    )
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    x_val = torch.randn(1024, dim)
    stage_starts = [int(s) for s in config["stages"].split(",")]
    window = []
    for step in range(config["steps"]):
        active = 2 + 2 * sum(step >= s for s in stage_starts)  # the curriculum's difficulty
        x = torch.randn(config["batch_size"], dim)
        loss = torch.nn.functional.mse_loss(model(x), targets(x, active))
        opt.zero_grad()
        loss.backward()
        opt.step()
        window.append(loss.item())
        if (step + 1) % config["log_every"] == 0:
            metrics = {"loss": sum(window) / len(window), "stage_terms": float(active)}
            window = []
            if (step + 1) % (config["log_every"] * 10) == 0:
                with torch.no_grad():
                    val = torch.nn.functional.mse_loss(model(x_val), targets(x_val, active))
                metrics["val_loss"] = float(val)
            rescue.report(**metrics)


if __name__ == "__main__":
    train(
        {
            "lr": 0.01,
            "batch_size": 64,
            "steps": 1200,
            "stages": "250,500,750",
            "log_every": 4,
            "seed": 0,
        }
    )
