"""Linear-probe accuracy against pretraining steps, per modality, on a synthetic world.

A quick in-memory loop for comparing recipes on a CPU: the world's clips are decoded once (the
evaluation preprocessing: the middle frame, no augmentation), batches are drawn from memory, and
every ``--every`` steps the demo's L-BFGS probe scores the pooled embeddings (audio and video
concatenated, then each alone), and a logistic probe of the video embedding scores which
classes are on screen (``onscreen_mAP``: multi-label mAP; the label probe cannot show what the
video encoder learns, since the label is the loudest sound, often off screen).
``--objective pretrain`` trains the recipe's AV-MAE loss (any model argument overridden with
``--set``); ``--objective supervised`` trains the same encoders on the clip label through a
linear head instead, the ceiling of what the budget can learn; ``--objective onscreen`` trains
them on the on-screen classes from the video embedding, the video encoder's ceiling.

    python scripts/probe_curve.py --world demo_out/world --steps 900 --every 300
    python scripts/probe_curve.py --world demo_out/world --set audio_view_weight=0
    python scripts/probe_curve.py --world demo_out/world --objective supervised --steps 300
    python scripts/probe_curve.py --world demo_out/world --set video_patch_size=8 video_view_weight=1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from avpretrain.data.loading.audio import FbankConfig
from avpretrain.data.loading.datamodule import AVDataModule
from avpretrain.models import AVMAE
from avpretrain.probe import extract_embeddings, linear_probe, multilabel_probe_map
from avpretrain.recipes import resolve_recipe
from avpretrain.training.param_groups import param_groups
from avpretrain.training.schedule import scaled_lr


def _onscreen(sample: dict, meta: dict, opts: object) -> dict[str, torch.Tensor]:
    """``onscreen`` [C]: multi-hot of the classes of the clip's on-screen objects."""
    classes = torch.zeros(opts.num_classes)  # type: ignore[attr-defined]
    for obj in meta["synthetic"]["objects"]:
        if obj["on_screen"]:
            classes[obj["class_id"]] = 1.0
    return {"onscreen": classes}


def _batches(world: Path, split: str, data: dict, classes: int) -> list[dict]:
    dm = AVDataModule(
        val_urls=str(world / split),
        batch_size=64,
        num_workers=0,
        frame_size=data["frame_size"],
        fbank=FbankConfig(**data["fbank"]),
        num_classes=classes,
        targets=_onscreen,
    )
    dm.setup("validate")
    return list(dm.val_dataloader())


def _probe(model: AVMAE, train: list[dict], val: list[dict], classes: int) -> dict[str, float]:
    """Probe accuracy of the concatenated embeddings (``av``) and of each modality alone, and
    the on-screen mAP of the video embedding."""
    xtr, ytr = extract_embeddings(model, train)
    xva, yva = extract_embeddings(model, val)
    model.train()
    d = model.audio_encoder.embed_dim
    parts = {"av": slice(None), "audio": slice(0, d), "video": slice(d, None)}
    scores = {
        name: round(linear_probe(xtr[:, s], ytr, xva[:, s], yva, classes), 3)
        for name, s in parts.items()
    }
    on_train, on_val = (torch.cat([b["onscreen"] for b in bs]) for bs in (train, val))
    scores["onscreen_mAP"] = round(
        multilabel_probe_map(xtr[:, d:], on_train, xva[:, d:], on_val), 3
    )
    return scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--world", type=Path, required=True, help="synthetic world (train/, val/)")
    p.add_argument("--recipe", default="pretrain/tiny", help="pretraining recipe for the model")
    p.add_argument(
        "--objective", choices=("pretrain", "supervised", "onscreen"), default="pretrain"
    )
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
    audio, video, labels, onscreen = (
        torch.cat([b[k] for b in train]) for k in ("audio", "video", "label", "onscreen")
    )
    width = model.audio_encoder.embed_dim + model.video_encoder.embed_dim
    head = torch.nn.Linear(width, classes)
    video_head = torch.nn.Linear(model.video_encoder.embed_dim, classes)
    hp = recipe["model"]["init_args"]
    lr = scaled_lr(hp["base_lr"], args.batch_size, hp.get("lr_reference_batch", 256))
    heads = [*head.parameters(), *video_head.parameters()]
    groups = [*param_groups(model, 0.05), {"params": heads, "weight_decay": 0.0}]
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
            loss = F.cross_entropy(head(pooled), labels[idx])
        elif args.objective == "onscreen":
            out = model.encode(audio=audio[idx], video=video[idx])
            loss = F.binary_cross_entropy_with_logits(
                video_head(out["video_embedding"]), onscreen[idx]
            )
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
