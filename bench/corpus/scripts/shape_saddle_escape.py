"""Healthy shape: a long plateau at the starting loss, then sudden drops. A deep linear network
(four layers, no nonlinearity) with small initial weights learns a low-rank linear map. Near
zero every layer's gradient is scaled by the others' tiny weights, so for a long time nothing
seems to happen; each singular direction of the map then grows exponentially and is learned
in a sudden drop, the strongest first (the saddle-to-saddle dynamics of deep linear networks,
Saxe et al. 2014). The plateau is a stage of healthy training, not a stuck run."""

import torch

import rescue


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    dim, width = 16, 16
    u, _ = torch.linalg.qr(torch.randn(dim, dim))
    v, _ = torch.linalg.qr(torch.randn(dim, dim))
    strengths = torch.tensor([3.0, 2.0, 1.0] + [0.0] * (dim - 3))
    target_map = u @ torch.diag(strengths) @ v.T
    layers = []
    for i in range(config["depth"]):
        layer = torch.nn.Linear(
            dim if i == 0 else width, dim if i == config["depth"] - 1 else width, bias=False
        )
        torch.nn.init.normal_(layer.weight, std=config["init_std"])
        layers.append(layer)
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"])
    x_val = torch.randn(1024, dim)
    y_val = x_val @ target_map.T
    for step in range(config["steps"]):
        x = torch.randn(config["batch_size"], dim)
        y = x @ target_map.T + 0.05 * torch.randn(config["batch_size"], dim)
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % config["log_every"] == 0:
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(model(x_val), y_val)
            rescue.report(loss=loss.item(), val_loss=float(val))


if __name__ == "__main__":
    train(
        {
            "lr": 0.5,
            "init_std": 0.03,
            "depth": 4,
            "batch_size": 64,
            "steps": 800,
            "log_every": 5,
            "seed": 0,
        }
    )
