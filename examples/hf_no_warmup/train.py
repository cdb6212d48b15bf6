"""A tiny GPT-2, built from a config (no download), trained by the Hugging Face Trainer on
synthetic token sequences, with a learning rate too high for a transformer started without
learning-rate warm-up. The only line about rescue is ``callbacks=[RescueCallback()]``.

The sequences follow a random Markov chain over 32 tokens in which each token has two likely
successors: a model that learns the chain reaches a loss near ln 2 (0.69); one that predicts
the token frequencies only, ln 32 (3.47).

    python examples/hf_no_warmup/train.py                   # by hand, the shipped settings
    python examples/hf_no_warmup/train.py lr=0.003          # any param as key=value
"""

import sys
import tempfile

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

from rescue.integrations.transformers import RescueCallback

DEFAULTS = {"lr": 0.3, "warmup_steps": 0, "steps": 150, "seed": 0}
VOCAB, LENGTH = 32, 32


class MarkovTokens(torch.utils.data.Dataset):
    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(1234)  # one chain for every run
        successors = torch.stack(
            [torch.randperm(VOCAB, generator=generator)[:2] for _ in range(VOCAB)]
        )
        generator = torch.Generator().manual_seed(seed)
        tokens = torch.empty(size, LENGTH, dtype=torch.long)
        tokens[:, 0] = torch.randint(0, VOCAB, (size,), generator=generator)
        for t in range(1, LENGTH):
            pick = torch.randint(0, 2, (size,), generator=generator)
            tokens[:, t] = successors[tokens[:, t - 1], pick]
        self.tokens = tokens

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.tokens[i], "labels": self.tokens[i]}


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=VOCAB,
            n_positions=LENGTH,
            n_embd=64,
            n_layer=2,
            n_head=4,
        )
    )
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="hf-no-warmup-"),
        max_steps=config["steps"],
        per_device_train_batch_size=32,
        per_device_eval_batch_size=128,
        learning_rate=config["lr"],
        warmup_steps=config["warmup_steps"],
        lr_scheduler_type="linear",
        logging_steps=5,
        eval_strategy="steps",
        eval_steps=25,
        save_strategy="no",
        report_to=[],
        seed=config["seed"],
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=MarkovTokens(4096, config["seed"]),
        eval_dataset=MarkovTokens(256, config["seed"] + 1),
        callbacks=[RescueCallback()],
    )
    trainer.train()


if __name__ == "__main__":
    config = dict(DEFAULTS)
    for arg in sys.argv[1:]:
        key, value = arg.split("=", 1)
        config[key] = type(DEFAULTS[key])(value)
    train(config)
