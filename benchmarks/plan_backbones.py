"""Every offered segmentation backbone under every reduced-precision policy with XLA, on the CPU.

The plan gives a tensor-core GPU mixed precision and XLA; the graph XLA compiles is the same on
the CPU, so a backbone whose training step does not compile here would not compile on the
user's GPU either (issue 12: Keras's bilinear resize in float16 failed XLA's HLO verifier).
Too slow for the test suite (one to three minutes of XLA compilation per backbone here), so it
runs here and its table goes to BENCHMARKS.md ("GPU plans run on the CPU").

For each backbone x policy: build the U-Net with ``weights="none"`` at 64 px under the policy,
compile with ``jit_compile=True`` and the project's default loss, fit 2 steps of batch 2, and
report whether it ran, the first step's seconds (XLA compilation, mostly) and the loss.

Usage:
    python benchmarks/plan_backbones.py                    # all backbones, float16 and bfloat16
    python benchmarks/plan_backbones.py --backbones mobilenet_v2 --policies mixed_float16
"""

from __future__ import annotations

import argparse
import json
import platform
import time


def check(backbone: str, policy: str, image_size: int) -> dict:
    import keras
    import numpy as np

    from fisuras.hardware.apply import precision_policy
    from fisuras.models import build_segmenter, make_loss

    with precision_policy(policy):
        model = build_segmenter(backbone, image_size=image_size, weights="none")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=make_loss("bce_dice"),
                  jit_compile=True)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (4, image_size, image_size, 3)).astype("float32")
    masks = (rng.uniform(size=(4, image_size, image_size, 1)) > 0.9).astype("float32")
    started = time.perf_counter()
    try:
        loss = model.fit(images, masks, batch_size=2, epochs=1, verbose=0).history["loss"][-1]
    except Exception as error:  # noqa: BLE001 (the failure is the finding)
        from fisuras.hardware.plan import error_summary

        return {"backbone": backbone, "policy": policy, "ran": False,
                "error": error_summary(error)}
    return {"backbone": backbone, "policy": policy, "ran": bool(np.isfinite(loss)),
            "seconds": round(time.perf_counter() - started, 1), "loss": round(float(loss), 4)}


def main() -> None:
    from fisuras.models import BACKBONES

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=[*BACKBONES, "unet_light"])
    parser.add_argument("--policies", nargs="+", default=["mixed_float16", "mixed_bfloat16"])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    rows = [check(b, p, args.image_size) for b in args.backbones for p in args.policies]
    print(f"{time.strftime('%Y-%m-%d %H:%M')} UTC, {platform.processor() or platform.machine()}")
    print("| backbone | policy | XLA step ran | first 2 steps (s) | loss |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['backbone']} | {row['policy']} | {'yes' if row['ran'] else 'NO'} | "
              f"{row.get('seconds', '-')} | {row.get('loss', row.get('error', ''))} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
