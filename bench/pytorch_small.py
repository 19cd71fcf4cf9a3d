#!/usr/bin/env python3
"""PyTorch-eager twin of crates/ml/benches/train_throughput.rs (the `small` preset).

Same architecture (byte-level causal transformer: token + learned position embeddings, pre-norm
blocks with fused-QKV causal SDPA attention and a GELU MLP, final LayerNorm, tied head), same
hyperparameters (batch 16 x context 128, AdamW lr 3e-3 wd 0.01, grad-norm clip 1.0), same
protocol (3 untimed warm-up steps, then STEPS timed steps), subnormals flushed to zero on both. Prints `RESULT pytorch tokens_per_s X`.

Env: AUTONET_BENCH_THREADS, AUTONET_BENCH_STEPS (20), AUTONET_BENCH_BATCH (16),
AUTONET_BENCH_PRESET (small|tiny). Run with the python of the full torch==2.13.0 venv
(`AUTONET_TORCH=cuda script/setup-libtorch.sh --print-python`); it runs on CPU.
"""
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    "tiny": dict(vocab=256, d_model=32, n_layers=2, n_heads=2, context=32, mlp_ratio=4),
    "small": dict(vocab=256, d_model=128, n_layers=4, n_heads=4, context=128, mlp_ratio=4),
}


class Block(nn.Module):
    def __init__(self, d, h, mlp):
        super().__init__()
        self.h = h
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, mlp * d)
        self.fc_proj = nn.Linear(mlp * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        heads = lambda y: y.view(b, t, self.h, d // self.h).transpose(1, 2)
        a = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True)
        x = x + self.proj(a.transpose(1, 2).contiguous().view(b, t, d))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x))))


class Lm(nn.Module):
    def __init__(self, vocab, d_model, n_layers, n_heads, context, mlp_ratio):
        super().__init__()
        self.wte = nn.Embedding(vocab, d_model)
        self.wpe = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, mlp_ratio) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln" in name:
                nn.init.ones_(p)
            else:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for blk in self.blocks:
            x = blk(x)
        return self.ln_f(x) @ self.wte.weight.t()


def bench_setup():
    """The settings every benchmark here shares with its tch twin (crates/ml/benches/common):
    subnormals flushed to zero, AUTONET_BENCH_THREADS threads when set, the preset of
    AUTONET_BENCH_PRESET (small). Returns (preset name, its config)."""
    torch.set_flush_denormal(True)
    if "AUTONET_BENCH_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["AUTONET_BENCH_THREADS"]))
    preset = os.environ.get("AUTONET_BENCH_PRESET", "small")
    return preset, PRESETS[preset]


def main():
    preset, cfg = bench_setup()
    steps = int(os.environ.get("AUTONET_BENCH_STEPS", "20"))
    batch = int(os.environ.get("AUTONET_BENCH_BATCH", "16"))
    ctx = cfg["context"]
    torch.manual_seed(0)
    model = Lm(**cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    data = torch.randint(0, 256, (1 << 20,), dtype=torch.int64)

    def step():
        off = torch.randint(0, data.numel() - ctx - 1, (batch,))
        win = torch.stack([data[o : o + ctx + 1] for o in off.tolist()])
        x, y = win[:, :-1], win[:, 1:]
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, cfg["vocab"]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    secs = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"pytorch {preset}: {n_params} params, threads {torch.get_num_threads()}, {steps} steps x "
        f"{batch}x{ctx} tokens in {secs:.2f}s ({1e3 * secs / steps:.1f} ms/step)"
    )
    print(f"RESULT pytorch tokens_per_s {steps * batch * ctx / secs:.1f}")


if __name__ == "__main__":
    main()
