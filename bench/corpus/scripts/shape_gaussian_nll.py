"""Sick shape: a heteroscedastic regressor (a mean and a log standard deviation per input,
trained on the Gaussian negative log-likelihood) with Adam at a learning rate far too high.
The predicted scale collapses on the points it fits best, the likelihood's gradient grows
without bound and the weights turn NaN; the next ``torch.distributions.Normal`` built from them
raises ``ValueError`` (its arguments are validated, as they are by default). The run ends in a
crash whose message is about non-finite values, not a NaN loss: a common way for a divergence
to show itself in code built on torch.distributions (VAEs, Gaussian policies, Pyro)."""

import torch

import rescue


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    dim = 8
    w_true = torch.randn(dim)

    def batch(n):
        x = torch.randn(n, dim)
        noise = 0.1 + 0.9 * torch.sigmoid(2 * x[:, 0])  # noise depends on the input
        return x, x @ w_true + noise * torch.randn(n)

    model = torch.nn.Sequential(
        torch.nn.Linear(dim, config["width"]), torch.nn.Tanh(), torch.nn.Linear(config["width"], 2)
    )
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    x_val, y_val = batch(2048)
    for step in range(config["steps"]):
        x, y = batch(config["batch_size"])
        mean, log_std = model(x).unbind(-1)
        nll = -torch.distributions.Normal(mean, log_std.exp()).log_prob(y).mean()
        opt.zero_grad()
        nll.backward()
        opt.step()
        if (step + 1) % config["log_every"] == 0:
            with torch.no_grad():
                mean, log_std = model(x_val).unbind(-1)
                val = -torch.distributions.Normal(mean, log_std.exp()).log_prob(y_val).mean()
            rescue.report(loss=nll.item(), val_nll=float(val))


if __name__ == "__main__":
    train({"lr": 1.0, "width": 64, "batch_size": 32, "steps": 600, "log_every": 5, "seed": 0})
