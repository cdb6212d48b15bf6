"""Healthy shape: occasional gradient-norm spikes, clipped. A GRU learns a running-statistic task
on sequences whose values are heavy-tailed (Student-t, 3 degrees of freedom), as sensor data
often is: now and then a batch holds an extreme value whose gradient is many times the usual
size. ``clip_grad_norm_`` caps the step, so each spike shows in the reported ``grad_norm`` (the
norm before clipping) and barely in the loss, and training goes on."""

import torch

import rescue


def sample(count, length, generator):
    t = torch.distributions.StudentT(3.0)
    x = t.sample((count, length, 1)) * 0.5
    y = x[:, -5:, 0].mean(1, keepdim=True)  # the target: the mean of the last 5 values
    return x, y


class Model(torch.nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.gru = torch.nn.GRU(1, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1])


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    gen = torch.Generator().manual_seed(config["seed"])
    x_val, y_val = sample(512, config["length"], gen)
    model = Model(32)
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    for step in range(config["steps"]):
        x, y = sample(config["batch_size"], config["length"], gen)
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config["grad_clip"])
        opt.step()
        metrics = {"loss": loss.item(), "grad_norm": float(grad_norm)}
        if (step + 1) % 50 == 0:
            with torch.no_grad():
                metrics["val_loss"] = float(torch.nn.functional.mse_loss(model(x_val), y_val))
        rescue.report(**metrics)


if __name__ == "__main__":
    train({"lr": 0.003, "grad_clip": 1.0, "batch_size": 32, "length": 20, "steps": 400, "seed": 0})
