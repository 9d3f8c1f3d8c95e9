"""Why separation fails on the synthetic world: probe the visual features, run the oracle.

Loads the world's batches once (the separation recipe's targets, plus ``sep_classes``, the
multi-hot of each clip's on-screen sounding classes), then for pretrained and random encoders:

- **probe**: a linear probe of the frozen video embedding against ``sep_classes`` (logistic
  regression on the training clips, mean average precision on validation; chance = the class
  prevalence);
- **separation**: the recipe's head trained for ``--steps`` steps on the cached batches
  (a plain loop, no loader cost), then SDR / SDR_mix on the first ``--scored`` validation
  mixtures and how different the two sources' predicted masks are (every ``--every`` steps:
  the curve);

the same head conditioned on ``sep_classes`` itself (``oracle``), which tells a failing
U-Net from failing features; and (``ideal``) the ideal ratio masks of the true sources, the
ceiling of any magnitude mask on the mixture's phase.

    python scripts/diagnose_separation.py --world demo_out/world --encoders demo_out/encoders.pt
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from jsonargparse import ArgumentParser

from avpretrain.metrics.separation import SeparationMetrics
from avpretrain.models.encoder_file import load_encoders
from avpretrain.probe import multilabel_probe_map
from avpretrain.recipes import resolve_recipe
from avpretrain.tasks.backbone import layer_decay_groups
from avpretrain.tasks.separation import SeparationTask
from avpretrain.tasks.separation_stft import istft, stft
from avpretrain.training.param_groups import param_groups
from avpretrain.training.schedule import warmup_cosine


def build(cfg: dict, key: str) -> object:
    """Instantiate ``cfg[key]`` (a ``class_path`` / ``init_args`` block) as LightningCLI would."""
    parser = ArgumentParser()
    parser.add_argument("--obj", type=object)
    ns = parser.parse_object({"obj": cfg[key]})
    return parser.instantiate(ns).obj


def cached_batches(cfg: dict, world: Path, classes: int, train_batches: int) -> tuple[list, list]:
    """``train_batches`` training batches and every validation batch of ``world``."""
    data = copy.deepcopy(cfg["data"])
    data["init_args"].update(train_urls=str(world / "train"), val_urls=str(world / "val"))
    data["init_args"]["num_workers"] = 0
    data["init_args"]["targets"]["init_args"]["oracle_classes"] = classes
    dm = build({"data": data}, "data")
    dm.setup("fit")
    train = []
    while len(train) < train_batches:
        for batch in dm.train_dataloader():
            train.append(batch)
            if len(train) == train_batches:
                break
    return train, list(dm.val_dataloader())


def probe_map(task: SeparationTask, train: list, val: list, steps: int = 300) -> float:
    """Validation mAP of a logistic probe of the frozen video embedding for ``sep_classes``."""

    def features(batches: list) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            x = torch.cat([task.encode(b)["video_embedding"] for b in batches])
        return x, torch.cat([b["sep_classes"] for b in batches])

    (x, y), (xv, yv) = features(train), features(val)
    return multilabel_probe_map(x, y, xv, yv, steps)


def pool(batches: list) -> dict:
    """The cached batches as one batch (tensors concatenated, lists joined)."""
    return {
        k: torch.cat([b[k] for b in batches])
        if isinstance(batches[0][k], torch.Tensor)
        else [x for b in batches for x in b[k]]
        for k in batches[0]
    }


def draw(clips: dict, index: torch.Tensor) -> dict:
    """The batch of ``clips`` at ``index`` [B]."""
    return {
        k: v[index] if isinstance(v, torch.Tensor) else [v[i] for i in index.tolist()]
        for k, v in clips.items()
    }


def separation(
    task: SeparationTask,
    train: list,
    val: list,
    steps: int,
    scored: int,
    every: int,
    redraw: bool = True,
    cosine: bool = False,
) -> list[tuple[int, dict]]:
    """Train the head for ``steps`` steps on ``train``, scoring ``val`` every ``every``.

    With ``redraw`` each step draws a random batch from all cached clips, so the mixed pairs
    change from step to step as a shuffling loader's do; otherwise the cached batches are cycled
    (the same fixed pairs every epoch, which the head can memorise). The task's optimiser
    groups: the head at ``lr``, trainable backbone layers (``mode: partial`` / ``finetune``) at
    ``lr * layer_decay ** depth``; a constant rate, or with ``cosine`` the task's schedule
    (warmup, then cosine decay to 0) over ``steps``, as a fit of exactly ``steps`` steps has.
    """
    hp = task.hparams
    groups = param_groups(task.head, hp.weight_decay)
    groups += layer_decay_groups(task.backbone, hp.lr, hp.weight_decay, hp.layer_decay)
    opt = torch.optim.AdamW(groups, lr=hp.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: warmup_cosine(step, hp.warmup_steps, steps) if cosine else 1.0
    )
    clips, size = pool(train), len(train[0]["key"])
    curve = []
    for step in range(1, steps + 1):
        task.train()
        opt.zero_grad()
        if redraw:
            batch = draw(clips, torch.randperm(len(clips["key"]))[:size])
        else:
            batch = train[(step - 1) % len(train)]
        loss = task._loss(task(batch))
        loss.backward()
        opt.step()
        schedule.step()
        if step % every == 0 or step == steps:
            result = score(task, val, scored) | {"loss": round(float(loss.detach()), 4)}
            print(f"step {step}: {result}", flush=True)
            curve.append((step, result))
    return curve


def score(task: SeparationTask, val: list, scored: int) -> dict:
    """SDR / SIR with binary and soft masks, SDR_mix and the masks' difference on ``val``."""
    task.eval()
    result: dict = {}
    with torch.no_grad():
        outs = [task(b) for b in val if len(b["key"]) >= 2]
    masks = torch.cat([torch.sigmoid(o["logits"]) for o in outs])
    if masks.shape[1] == 2:  # how far apart the two sources' masks are
        result["mask_diff"] = round(float((masks[:, 0] - masks[:, 1]).abs().mean()), 3)
    for threshold in (0.5, None):
        task.mask_threshold = threshold
        scores = bss(outs, scored, task.estimates)
        tag = "binary" if threshold else "soft"
        result[f"SDR_{tag}"] = round(scores["sdr"], 2)
        result[f"SIR_{tag}"] = round(scores["sir"], 2)
        result["SDR_mix"] = round(scores["sdr_mix"], 2)
    return result


def bss(outs: list[dict], scored: int, estimates: Callable[[dict], torch.Tensor]) -> dict:
    """BSS Eval scores of ``estimates(out)`` over the first ``scored`` mixtures of ``outs``."""
    metrics = SeparationMetrics()
    for out in outs:
        keep = min(len(out["mixture"]), scored - metrics.seen)
        if keep <= 0:
            break
        out = {k: v[:keep] for k, v in out.items()}
        metrics.update(out["sources"], estimates(out), out["mixture"])
    return metrics.compute()


def ideal(task: SeparationTask, val: list, scored: int) -> dict:
    """SDR of the ideal ratio masks ``|S_j| / sum_k |S_k|``: the ceiling of a magnitude mask."""

    def estimates(out: dict) -> torch.Tensor:
        mags = stft(out["sources"], task.spec)[0]
        mask = mags / mags.sum(dim=1, keepdim=True).clamp_min(1e-10)
        mag = out["mag_mix"][:, None] * mask
        return istft(mag, out["phase_mix"][:, None], task.spec, out["mixture"].shape[-1])

    task.eval()
    with torch.no_grad():
        scores = bss([task(b) for b in val if len(b["key"]) >= 2], scored, estimates)
    return {key: round(scores[key.lower()], 2) for key in ("SDR", "SIR", "SDR_mix")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--world", required=True, type=Path)
    p.add_argument("--encoders", required=True)
    p.add_argument("--recipe", default="tasks/separation/synth.yaml")
    p.add_argument(
        "--set", nargs="*", default=[], help="model init_args overrides, dotted.key=yaml"
    )
    p.add_argument("--classes", type=int, default=8)
    p.add_argument("--train-batches", type=int, default=32)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--every", type=int, default=0, help="score every N steps (0: at the end)")
    p.add_argument("--scored", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", nargs="+", default=["oracle", "pretrained", "random"])
    p.add_argument("--no-probe", action="store_true")
    p.add_argument(
        "--cosine", action="store_true", help="the task's warmup + cosine schedule over --steps"
    )
    p.add_argument(
        "--fixed-pairs",
        action="store_true",
        help="cycle the cached batches (fixed mixtures) instead of drawing a batch per step",
    )
    args = p.parse_args()
    cfg = yaml.safe_load(resolve_recipe(args.recipe).read_text())
    for item in args.set:
        key, value = item.split("=", 1)
        *path, last = key.split(".")
        node = cfg["model"]["init_args"]
        for part in path:
            node = node[part]
        node[last] = yaml.safe_load(value)
    torch.manual_seed(args.seed)
    train, val = cached_batches(cfg, args.world, args.classes, args.train_batches)
    for run in args.runs:
        model = copy.deepcopy(cfg)
        init = model["model"]["init_args"]
        init["encoders"] = None if run == "random" else args.encoders
        # random encoders of the pretrained file's architecture (e.g. its video patch size)
        init["backbone"] = json.loads(json.dumps(load_encoders(args.encoders).config))
        if run in ("oracle", "ideal"):
            init["oracle_classes"] = args.classes
        torch.manual_seed(args.seed)
        task = build(model, "model")
        if run == "ideal":
            print(f"ideal ratio masks: {ideal(task, val, args.scored)}", flush=True)
            continue
        probe = None
        if run != "oracle" and not args.no_probe:
            probe = round(probe_map(task, train, val), 3)
        torch.manual_seed(args.seed)
        for step, result in separation(
            task,
            train,
            val,
            args.steps,
            args.scored,
            args.every or args.steps,
            redraw=not args.fixed_pairs,
            cosine=args.cosine,
        ):
            print(f"{run} step {step}: probe mAP {probe} {result}", flush=True)
    prevalence = torch.cat([b["sep_classes"] for b in val]).mean(0)
    print(f"probe chance (mean class prevalence): {float(prevalence.mean()):.3f}")


if __name__ == "__main__":
    main()
