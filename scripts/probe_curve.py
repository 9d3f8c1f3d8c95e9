"""Linear-probe accuracy against pretraining steps, per modality, on a synthetic world.

A quick in-memory loop for comparing recipes on a CPU: the world's clips are decoded once (the
evaluation preprocessing: the middle frame, no augmentation), batches are drawn from memory, and
every ``--every`` steps the demo's L-BFGS probe scores the pooled embeddings (audio and video
concatenated, then each alone). ``--objective pretrain`` trains the recipe's AV-MAE loss (any
model argument overridden with ``--set``); ``--objective supervised`` trains the same encoders
on the clip label through a linear head instead, the ceiling of what the budget can learn.

    python scripts/probe_curve.py --world demo_out/world --steps 900 --every 300
    python scripts/probe_curve.py --world demo_out/world --set audio_view_weight=0
    python scripts/probe_curve.py --world demo_out/world --objective supervised --steps 300
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml

from avpretrain.data.loading.audio import FbankConfig
from avpretrain.data.loading.datamodule import AVDataModule
from avpretrain.models import AVMAE
from avpretrain.probe import extract_embeddings, linear_probe
from avpretrain.recipes import resolve_recipe
from avpretrain.training.param_groups import param_groups
from avpretrain.training.schedule import scaled_lr


def _batches(world: Path, split: str, data: dict, classes: int) -> list[dict]:
    dm = AVDataModule(
        val_urls=str(world / split),
        batch_size=64,
        num_workers=0,
        frame_size=data["frame_size"],
        fbank=FbankConfig(**data["fbank"]),
        num_classes=classes,
    )
    dm.setup("validate")
    return list(dm.val_dataloader())


def _probe(model: AVMAE, train: list[dict], val: list[dict], classes: int) -> dict[str, float]:
    """Probe accuracy of the concatenated embeddings (``av``) and of each modality alone."""
    xtr, ytr = extract_embeddings(model, train)
    xva, yva = extract_embeddings(model, val)
    model.train()
    d = model.audio_encoder.embed_dim
    parts = {"av": slice(None), "audio": slice(0, d), "video": slice(d, None)}
    return {
        name: round(linear_probe(xtr[:, s], ytr, xva[:, s], yva, classes), 3)
        for name, s in parts.items()
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--world", type=Path, required=True, help="synthetic world (train/, val/)")
    p.add_argument("--recipe", default="pretrain/tiny", help="pretraining recipe for the model")
    p.add_argument("--objective", choices=("pretrain", "supervised"), default="pretrain")
    p.add_argument("--set", nargs="*", default=[], metavar="ARG=VALUE", help="AVMAE arguments")
    p.add_argument("--steps", type=int, default=900)
    p.add_argument("--every", type=int, default=300, help="probe every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", type=Path, help="append the curve as a JSON line to this file")
    args = p.parse_args()

    recipe = yaml.safe_load(resolve_recipe(args.recipe).read_text())
    model_args = dict(recipe["model"]["init_args"]["model"]["init_args"])
    for item in args.set:
        key, value = item.split("=", 1)
        model_args[key] = yaml.safe_load(value)
    data = recipe["data"]["init_args"]
    data["frame_size"] = model_args["video_size"]
    index = json.loads((args.world / "train" / "index.json").read_text())
    classes = index["synth"]["num_classes"]

    torch.manual_seed(args.seed)
    model = AVMAE(**model_args)
    train, val = (_batches(args.world, s, data, classes) for s in ("train", "val"))
    audio, video, labels = (torch.cat([b[k] for b in train]) for k in ("audio", "video", "label"))
    width = model.audio_encoder.embed_dim + model.video_encoder.embed_dim
    head = torch.nn.Linear(width, classes)
    hp = recipe["model"]["init_args"]
    lr = scaled_lr(hp["base_lr"], args.batch_size, hp.get("lr_reference_batch", 256))
    groups = [*param_groups(model, 0.05), {"params": head.parameters(), "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))
    warmup = hp.get("warmup_steps") or 50
    generator = torch.Generator().manual_seed(args.seed)

    curve = [(0, _probe(model, train, val, classes), 0.0)]
    print(f"step 0: {curve[0][1]}", flush=True)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, step / warmup)
        idx = torch.randint(0, len(labels), (args.batch_size,), generator=generator)
        if args.objective == "supervised":
            out = model.encode(audio=audio[idx], video=video[idx])
            pooled = torch.cat([out["audio_embedding"], out["video_embedding"]], dim=-1)
            loss = torch.nn.functional.cross_entropy(head(pooled), labels[idx])
        else:
            loss = model(audio[idx], video[idx]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.every == 0:
            seconds = time.perf_counter() - start
            curve.append((step, _probe(model, train, val, classes), round(seconds, 1)))
            print(
                f"step {step}: {curve[-1][1]} loss {loss.item():.3f} ({seconds:.0f} s)", flush=True
            )
    if args.out:
        with args.out.open("a") as f:
            f.write(
                json.dumps(
                    {"args": vars(args) | {"world": str(args.world), "out": None}, "curve": curve}
                )
                + "\n"
            )


if __name__ == "__main__":
    main()
