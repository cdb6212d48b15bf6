"""Healthy shape: a loss that goes negative. An MLP regressor predicts a mean and a variance for
each input (heteroscedastic regression) and is trained on the Gaussian negative log-likelihood.
Where the measurement noise is small, a good fit predicts a small variance, and the density of a
narrow Gaussian exceeds 1: the NLL crosses zero and keeps falling below it. Negative is what a
good likelihood fit looks like here."""

import torch

import rescue


def sample(count):
    x = torch.randn(count, 4)
    noise_std = 0.02 + 0.1 * x[:, :1].abs()  # measurements are sharper near x0 = 0
    y = torch.sin(2 * x[:, :1]) + 0.5 * x[:, 1:2] ** 2 + noise_std * torch.randn(count, 1)
    return x, y


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    x_val, y_val = sample(1024)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 2),
    )
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    nll = torch.nn.GaussianNLLLoss(full=True)

    def predict(inputs):
        out = model(inputs)
        return out[:, :1], torch.nn.functional.softplus(out[:, 1:]) + 1e-6

    for step in range(config["steps"]):
        x, y = sample(config["batch_size"])
        mean, var = predict(x)
        loss = nll(mean, y, var)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % config["log_every"] == 0:
            with torch.no_grad():
                mean, var = predict(x_val)
                metrics = {
                    "loss": loss.item(),
                    "val_loss": float(nll(mean, y_val, var)),
                    "val_mse": float(torch.nn.functional.mse_loss(mean, y_val)),
                }
            rescue.report(**metrics)


if __name__ == "__main__":
    train({"lr": 0.003, "batch_size": 64, "steps": 1200, "log_every": 4, "seed": 0})
