r"""The retrieval task's shared space, for the own embedder's curation scores.

It gives the language score and, optionally, the instance and temporal scores.

The retrieval task (:class:`~avpretrain.tasks.retrieval.RetrievalTask`) matches a caption with
the *fused* audio-visual embedding: ``text_proj(text_encoder(caption))`` against
``av_proj([audio_embedding, video_embedding])``, and audio with video:
``audio_proj(audio_embedding)`` against ``video_proj(video_embedding)``, all L2-normalised,
where the pooled embeddings come from the task's backbone. :class:`TextTower` keeps exactly
those parts (backbone, text encoder, the four projections), so curation scores each pair in the
space it was trained in.

A tower file (``avpretrain-text-tower``) is written from a retrieval checkpoint::

    python -m avpretrain.curation.text_tower --ckpt runs/retrieval/checkpoints/last.ckpt \
        --config runs/retrieval/config.yaml --out text_tower.pt

``--config`` is the YAML the task was fitted with (LightningCLI saves it beside the run as
``config.yaml``): the checkpoint stores the head's weights but not its constructor arguments.
"""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn

from avpretrain.heads.retrieval import RetrievalHead
from avpretrain.heads.text import TextEncoder
from avpretrain.models import AVMAE
from avpretrain.models.encoder_file import DECODER_PREFIXES
from avpretrain.tasks.backbone import load_backbone

if TYPE_CHECKING:
    from avpretrain.tasks.retrieval import RetrievalTask

FORMAT = "avpretrain-text-tower"
VERSION = 2  # 2 added the audio and video projections; 1 is not read
DECODERS = tuple(f"backbone.{prefix}" for prefix in DECODER_PREFIXES)


def text_encoder_config(encoder: TextEncoder) -> dict[str, Any]:
    """Constructor arguments of a built :class:`TextEncoder` (dropout left out: eval only)."""
    layer = encoder.blocks.layers[0]
    return {
        "width": encoder.width,
        "depth": len(encoder.blocks.layers),
        "num_heads": layer.self_attn.num_heads,
        "max_length": encoder.pos_embed.shape[1],
        "mlp_ratio": layer.linear1.out_features / encoder.width,
    }


class TextTower(nn.Module):
    """Captions, audio, video and fused audio-visual embeddings in a retrieval head's space.

    Args:
        backbone: the AV-MAE whose pooled embeddings the head was trained on.
        text_encoder: the head's caption encoder.
        text_proj: the head's projection of the text encoder's output.
        av_proj: the head's projection of ``[audio_embedding, video_embedding]``.
        audio_proj, video_proj: the head's projections of the pooled audio and video
            embeddings (trained against each other).
    """

    def __init__(
        self,
        backbone: AVMAE,
        text_encoder: TextEncoder,
        text_proj: nn.Sequential,
        av_proj: nn.Sequential,
        audio_proj: nn.Sequential,
        video_proj: nn.Sequential,
    ) -> None:
        super().__init__()
        self.backbone, self.text_encoder = backbone, text_encoder
        self.text_proj, self.av_proj = text_proj, av_proj
        self.audio_proj, self.video_proj = audio_proj, video_proj

    @classmethod
    def from_head(cls, backbone: AVMAE, head: RetrievalHead) -> TextTower:
        """The tower of a bound retrieval ``head`` with a text encoder over ``backbone``.

        The modules are shared, not copied.
        """
        if not head.has_text or head.av_proj is None:
            raise ValueError("the retrieval head has no text encoder (or is not bound)")
        # a text encoder comes with its projection; a bound head has the pair's projections
        assert head.text_encoder is not None and head.text_proj is not None
        assert head.audio_proj is not None and head.video_proj is not None
        projections = (head.text_proj, head.av_proj, head.audio_proj, head.video_proj)
        return cls(backbone, head.text_encoder, *projections)

    @classmethod
    def from_task(cls, task: RetrievalTask) -> TextTower:
        """The tower of a fitted :class:`~avpretrain.tasks.retrieval.RetrievalTask`."""
        return cls.from_head(task.backbone, task.head)

    @property
    def embed_dim(self) -> int:
        """Width E of the shared space."""
        return cast(nn.Linear, self.av_proj[-1]).out_features

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> Tensor:
        """L2-normalised caption embeddings: B strings -> [B, E]."""
        return F.normalize(self.text_proj(self.text_encoder.encode_text(list(texts))), dim=-1)

    @torch.no_grad()
    def embed_av(self, audio: Tensor, video: Tensor) -> Tensor:
        """L2-normalised fused embeddings of pooled backbone embeddings.

        Args:
            audio: [B, Da] ``audio_embedding`` of :attr:`backbone`.
            video: [B, Dv] ``video_embedding`` of :attr:`backbone`.

        Returns:
            [B, E].
        """
        return F.normalize(self.av_proj(torch.cat([audio, video], dim=-1)), dim=-1)

    @torch.no_grad()
    def embed_audio(self, audio: Tensor) -> Tensor:
        """L2-normalised audio embeddings: [B, Da] ``audio_embedding`` -> [B, E]."""
        return F.normalize(self.audio_proj(audio), dim=-1)

    @torch.no_grad()
    def embed_video(self, video: Tensor) -> Tensor:
        """L2-normalised video embeddings: [B, Dv] ``video_embedding`` -> [B, E]."""
        return F.normalize(self.video_proj(video), dim=-1)


def save_text_tower(tower: TextTower, path: str | Path) -> Path:
    """Write ``tower`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "backbone_config": tower.backbone.config,
        "text_config": text_encoder_config(tower.text_encoder),
        "embed_dim": tower.embed_dim,
        "norm": not isinstance(tower.av_proj[0], nn.Identity),
        "state_dict": {k: v for k, v in tower.state_dict().items() if not k.startswith(DECODERS)},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def _tower_from_payload(payload: dict[str, Any], path: Path) -> TextTower:
    if payload.get("version") != VERSION:
        raise ValueError(
            f"{path}: text tower file version {payload.get('version')}, this avpretrain reads "
            f"version {VERSION}: write it again with `avpretrain text-tower` from its checkpoint"
        )
    backbone = AVMAE(**payload["backbone_config"])
    # encoding only, and not saved; AVMAE declares the decoders non-optional
    backbone.audio_decoder = backbone.video_decoder = None  # type: ignore[assignment]
    head = RetrievalHead(
        payload["embed_dim"], TextEncoder(**payload["text_config"]), norm=payload["norm"]
    )
    head.bind(backbone.audio_encoder.embed_dim, backbone.video_encoder.embed_dim)
    tower = TextTower.from_head(backbone, head)
    missing, unexpected = tower.load_state_dict(payload["state_dict"], strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: text tower weights: missing {missing}, unexpected {unexpected}")
    return tower


def _head_from_config(config: str | Path) -> RetrievalHead:
    """The retrieval head a fit YAML describes (``model.init_args.head``), freshly built."""
    from jsonargparse import ArgumentParser

    data = yaml.safe_load(Path(config).read_text())
    try:
        head_cfg = data["model"]["init_args"]["head"]
    except (KeyError, TypeError) as err:
        raise ValueError(f"{config}: no model.init_args.head (not a retrieval fit config)") from err
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--head", type=RetrievalHead)
    return parser.instantiate(parser.parse_object({"head": head_cfg})).head


def tower_from_checkpoint(ckpt_path: str | Path, config: str | Path) -> TextTower:
    """The tower inside a retrieval task checkpoint, its head rebuilt from the fit ``config``.

    Raises:
        ValueError: naming the file, when it is not a retrieval checkpoint with a text encoder
            or its weights do not fit the config's head.
    """
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    hparams = ckpt.get("hyper_parameters", {}) if isinstance(ckpt, dict) else {}
    if "state_dict" not in ckpt or "mode" not in hparams:
        raise ValueError(f"{ckpt_path}: not a task checkpoint (no state_dict / hyper_parameters)")
    encoders = hparams.get("encoders")
    if encoders is not None and not Path(encoders).exists():
        raise ValueError(f"{ckpt_path}: its encoder file {encoders} is gone (used for the shapes)")
    backbone = load_backbone(encoders, hparams.get("backbone"))
    state = ckpt["state_dict"]
    backbone.load_state_dict(
        {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    )
    head = _head_from_config(config)
    if not head.has_text:
        raise ValueError(f"{config}: the retrieval head has no text_encoder")
    head.bind(backbone.audio_encoder.embed_dim, backbone.video_encoder.embed_dim)
    head_state = {k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")}
    try:
        head.load_state_dict(head_state)
    except RuntimeError as err:
        raise ValueError(f"{ckpt_path}: head weights do not fit {config}: {err}") from err
    return TextTower.from_head(backbone, head)


def load_text_tower(path: str | Path, config: str | Path | None = None) -> TextTower:
    """A tower file from :func:`save_text_tower`, or a retrieval checkpoint with its ``config``.

    Raises:
        ValueError: naming the file, for anything else (or a checkpoint without ``config``).
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # a Lightning checkpoint holds more than weights
        payload = None
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        return _tower_from_payload(payload, path).eval()
    if config is None:
        raise ValueError(
            f"{path}: not a text tower file; for a retrieval checkpoint also give its fit config "
            "(--text-config), or convert it with `python -m avpretrain.curation.text_tower`"
        )
    return tower_from_checkpoint(path, config).eval()


def main(argv: list[str] | None = None) -> int:
    """Convert a retrieval checkpoint to a tower file."""
    p = argparse.ArgumentParser(
        prog="python -m avpretrain.curation.text_tower",
        description="Write the caption side of a retrieval checkpoint as a text tower file.",
    )
    p.add_argument("--ckpt", required=True, help="retrieval task checkpoint (e.g. last.ckpt)")
    p.add_argument("--config", required=True, help="the YAML the task was fitted with")
    p.add_argument("--out", required=True, help="tower file to write")
    args = p.parse_args(argv)
    out = save_text_tower(tower_from_checkpoint(args.ckpt, args.config), args.out)
    print(f"text tower of {args.ckpt} written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
