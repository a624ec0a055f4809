"""Learned absolute positions against rotary positions in the proxy model, as learning curves.

One curve per variant on the same bytes, seed and schedule (the probe grid's: warm-up, then a
constant learning rate): training loss and held-out loss (bits per byte) every ``--every`` steps.
Train: wikitext-2 test split; held out: the first 100 kB of its validation split
(``../shared/data/text/wikitext2``). Writes ``bench/results/proxy-positions.json``; the figures
are in docs/selection.md ("Rotary positions").

    .venv/bin/python bench/proxy_positions.py --recipe small --steps 480
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dedup import machine  # noqa: E402

from tiers.proxy_lm import RECIPES, StreamSlice, bits_per_byte, train  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "text", "wikitext2")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="small", choices=sorted(RECIPES))
    ap.add_argument("--steps", type=int, default=480)
    ap.add_argument("--every", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "proxy-positions.json"))
    args = ap.parse_args(argv)
    if not os.path.isdir(DATA):
        print(f"skipped: {DATA} is absent (../shared/data)")
        return 0
    with open(os.path.join(DATA, "test.txt"), "rb") as f:
        stream = np.frombuffer(f.read(), np.uint8)
    with open(os.path.join(DATA, "valid.txt"), "rb") as f:
        held_out = np.frombuffer(f.read()[:100_000], np.uint8)
    result: dict = {
        "recipe": args.recipe,
        "steps": args.steps,
        "seed": args.seed,
        "machine": machine(),
        "curves": {},
    }
    for positions in ("learned", "rotary"):
        recipe = RECIPES[args.recipe].model_copy(update={"positions": positions})
        step_bytes = recipe.batch * recipe.context
        points: list[dict] = []

        def record(checkpoint, model, points=points, step_bytes=step_bytes):
            points.append(
                {
                    "step": checkpoint // step_bytes,
                    "train_bits": round(model.train_loss, 4),
                    "held_out_bits": round(bits_per_byte(model, held_out), 4),
                }
            )

        started = time.time()
        checkpoints = [step_bytes * s for s in range(args.every, args.steps + 1, args.every)]
        model = train(
            [StreamSlice(stream, len(stream), step_bytes * args.steps)],
            recipe,
            seed=args.seed,
            device=args.device,
            checkpoints=checkpoints,
            on_checkpoint=record,
            warmup_steps=max(1, args.every // 2),
        )
        result["curves"][positions] = {"device": model.device, "seconds": round(time.time() - started, 1), "points": points}
        print(positions, " ".join(f"{p['step']}:{p['held_out_bits']:.3f}" for p in points), flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
