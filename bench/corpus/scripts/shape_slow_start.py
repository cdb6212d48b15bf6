"""Healthy shape: a slow start, then a sudden drop. A deep narrow linear network (6 layers of
width 16) started from small weights learns a linear map. Near zero the gradient of every layer
is a product of the other layers' small weights, so the start is a saddle: the loss stays almost
flat for a long time while the layers align, then falls steeply once they have (the classic
deep-linear-network plateau)."""

import torch

import rescue


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    width, depth = 16, config["depth"]
    # the target map: one strong direction and weak ones
    u, _ = torch.linalg.qr(torch.randn(width, width))
    v, _ = torch.linalg.qr(torch.randn(width, width))
    spectrum = torch.tensor([4.0] + [0.1] * (width - 1))
    target = u @ torch.diag(spectrum) @ v.T
    layers = [torch.nn.Linear(width, width, bias=False) for _ in range(depth)]
    for layer in layers:
        torch.nn.init.normal_(layer.weight, std=config["init_std"])
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"])
    x_val = torch.randn(512, width)
    for step in range(config["steps"]):
        x = torch.randn(config["batch_size"], width)
        loss = torch.nn.functional.mse_loss(model(x), x @ target.T)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % config["log_every"] == 0:
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(model(x_val), x_val @ target.T)
            rescue.report(loss=loss.item(), val_loss=float(val))


if __name__ == "__main__":
    train(
        {
            "lr": 0.05,
            "init_std": 0.1,
            "depth": 6,
            "batch_size": 64,
            "steps": 1200,
            "log_every": 4,
            "seed": 0,
        }
    )
