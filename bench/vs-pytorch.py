"""PyTorch's side of `npm run bench -- vs-pytorch`: the same LSTM language model trained on one thread.

Embedding V x E, one LSTM layer of H units, output H x V, Adam, batch B windows of T tokens; random tokens (the
step's cost does not depend on them). Prints one JSON line: {"torch": version, "blas": ..., "msPerStep": ...,
"tokensPerSecond": ...}, the best of `rounds` timings of `steps` steps each.

  python3 bench/vs-pytorch.py [--vocab 8192] [--embedding 128] [--hidden 256] [--batch 32] [--window 32]
"""
import argparse
import json
import time

import torch

p = argparse.ArgumentParser()
for name, default in [("vocab", 8192), ("embedding", 128), ("hidden", 256), ("batch", 32), ("window", 32),
                      ("steps", 10), ("rounds", 3), ("threads", 1), ("seed", 1234)]:
    p.add_argument(f"--{name}", type=int, default=default)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)


class Lm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(a.vocab, a.embedding)
        self.lstm = torch.nn.LSTM(a.embedding, a.hidden, batch_first=True)
        self.out = torch.nn.Linear(a.hidden, a.vocab)

    def forward(self, x):
        h, _ = self.lstm(self.embed(x))
        return self.out(h)


model = Lm()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
tokens = torch.randint(0, a.vocab, (a.batch, a.window + 1))
inputs, labels = tokens[:, :-1], tokens[:, 1:]


def step():
    opt.zero_grad(set_to_none=True)
    logits = model(inputs)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, a.vocab), labels.reshape(-1))
    loss.backward()
    opt.step()
    return loss.item()


step()
step()
best = float("inf")
for _ in range(a.rounds):
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    best = min(best, (time.perf_counter() - t0) / a.steps)
blas = [line.strip() for line in torch.__config__.show().splitlines() if "BLAS" in line]
print(json.dumps({
    "torch": torch.__version__,
    "blas": "; ".join(blas),
    "threads": torch.get_num_threads(),
    "msPerStep": best * 1000,
    "tokensPerSecond": a.batch * a.window / best,
}))
