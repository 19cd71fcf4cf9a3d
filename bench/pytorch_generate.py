#!/usr/bin/env python3
"""PyTorch-eager twin of crates/ml/benches/generate_throughput.rs (the `small` preset).

The same model as bench/pytorch_small.py, decoding greedily with a KV cache the usual PyTorch
way (keys and values concatenated per step, SDPA without mask for the single new position):
128 bytes after the same 16-byte prompt, 2 untimed warm-up generations, then REPEATS timed ones;
then 8 streams of the same prompt as one batch of 8 (the batch dimension, one forward call per
step for all of them). Prints `RESULT pytorch kv bytes_per_s X` and
`RESULT pytorch kv_8_batched bytes_per_s X` (total).

Env: AUTONET_BENCH_THREADS, AUTONET_BENCH_TOKENS (128), AUTONET_BENCH_REPEATS (5),
AUTONET_BENCH_PRESET (small|tiny). Run with the python of the full torch==2.13.0 venv
(`AUTONET_TORCH=cuda script/setup-libtorch.sh --print-python`); it runs on CPU.
"""
import os
import time

import torch
import torch.nn.functional as F

from pytorch_small import Lm, bench_setup


def step(model, idx, cache, past):
    """Logits of the positions `idx` [1, t] after `past` cached ones; extends `cache`."""
    t = idx.shape[1]
    x = model.wte(idx) + model.wpe(torch.arange(past, past + t))
    for i, blk in enumerate(model.blocks):
        b, _, d = x.shape
        q, k, v = blk.qkv(blk.ln1(x)).split(d, dim=2)
        heads = lambda y: y.view(b, t, blk.h, d // blk.h).transpose(1, 2)
        q, k, v = heads(q), heads(k), heads(v)
        if cache[i] is not None:
            k = torch.cat([cache[i][0], k], dim=2)
            v = torch.cat([cache[i][1], v], dim=2)
        cache[i] = (k, v)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=past == 0)
        x = x + blk.proj(a.transpose(1, 2).contiguous().view(b, t, d))
        x = x + blk.fc_proj(F.gelu(blk.fc(blk.ln2(x))))
    return model.ln_f(x) @ model.wte.weight.t()


def generate(model, prompt, n, context):
    seq = list(prompt)
    out = []
    cache = [None] * len(model.blocks)
    cached = 0
    for _ in range(n):
        if len(seq) > context:
            seq = seq[len(seq) - context :]
            cache = [None] * len(model.blocks)
            cached = 0
        logits = step(model, torch.tensor([seq[cached:]]), cache, cached)
        cached = len(seq)
        nxt = int(logits[0, -1].argmax())
        seq.append(nxt)
        out.append(nxt)
    return out


def generate_batch(model, prompt, n, context, b):
    """`b` streams of `prompt` decoded together (equal lengths: one cache for the batch)."""
    seqs = [list(prompt) for _ in range(b)]
    cache = [None] * len(model.blocks)
    cached = 0
    for _ in range(n):
        if len(seqs[0]) > context:
            seqs = [s[len(s) - context :] for s in seqs]
            cache = [None] * len(model.blocks)
            cached = 0
        logits = step(model, torch.tensor([s[cached:] for s in seqs]), cache, cached)
        cached = len(seqs[0])
        for s, nxt in zip(seqs, logits[:, -1].argmax(-1).tolist()):
            s.append(nxt)
    return [s[len(s) - n :] for s in seqs]


def main():
    preset, cfg = bench_setup()
    tokens = int(os.environ.get("AUTONET_BENCH_TOKENS", "128"))
    repeats = int(os.environ.get("AUTONET_BENCH_REPEATS", "5"))
    torch.manual_seed(1)
    model = Lm(**cfg).eval()
    prompt = b"fn main() {\n    "
    with torch.inference_mode():
        for _ in range(2):
            generate(model, prompt, tokens, cfg["context"])
        t0 = time.perf_counter()
        for _ in range(repeats):
            generate(model, prompt, tokens, cfg["context"])
        secs = time.perf_counter() - t0
        one = generate(model, prompt, tokens, cfg["context"])
        assert all(o == one for o in generate_batch(model, prompt, tokens, cfg["context"], 8))
        generate_batch(model, prompt, tokens, cfg["context"], 8)
        t0 = time.perf_counter()
        for _ in range(repeats):
            generate_batch(model, prompt, tokens, cfg["context"], 8)
        batched = time.perf_counter() - t0
    print(
        f"pytorch {preset}: threads {torch.get_num_threads()}, greedy {tokens} bytes after a "
        f"{len(prompt)}-byte prompt, {repeats} timed runs"
    )
    print(f"RESULT pytorch kv bytes_per_s {repeats * tokens / secs:.1f}")
    print(f"RESULT pytorch kv_8_batched bytes_per_s {8 * repeats * tokens / batched:.1f}")


if __name__ == "__main__":
    main()
