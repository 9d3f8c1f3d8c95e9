"""Import pretrained ViT weights (timm / MAE, AudioMAE, CAV-MAE) into :class:`ViTEncoder`.

Our encoders name parameters as timm's ``VisionTransformer``, so most keys load by name; what
needs care is the position table (class-token row, other patch grids, AudioMAE's transposed
spectrogram layout) and CAV-MAE's two-branch naming. Every import checks that it covers the
encoder exactly (``strict``) and returns an :class:`ImportReport`, also logged.

Layouts: our spectrograms are [B, 1, F, T] (grid row-major over frequency, as CAV-MAE).
AudioMAE takes [B, 1, T, F]; importing it transposes the patch kernel and reorders the position
table, so our tokens equal AudioMAE's tokens permuted from (T, F) to (F, T) order.

Checkpoint kinds that load (each tested on state dicts of that shape):

- MAE / timm ViT pretraining checkpoints (``norm.*``, decoder ignored) -> ``pool="mean"``
  (or ``"cls"``) encoders;
- MAE / AudioMAE fine-tuned checkpoints with global pooling and timm ``global_pool="avg"``
  models (``fc_norm.*``, no ``norm.*``) -> encoders built with ``pool="fc_norm"``, whose
  embedding is then the checkpoint's own (mean of un-normed patch tokens through ``fc_norm``);
  loading one into another pooling is an error that says so;
- timm class-token models (``global_pool="token"``: ``norm.*``, class token) -> ``pool="cls"``;
- timm ``no_embed_class`` models (a position table without the class-token row) -> the class
  token gets no position, as in timm;
- any of these with a classifier (``head.*``): the head is not part of an encoder; it is left
  out and offered as :attr:`ImportReport.classifier` for
  :meth:`avpretrain.heads.classification.LinearHead.load_linear`;
- CAV-MAE (``CAVMAE`` pretraining and ``CAVMAEFT``; ``mlp_head`` ignored) into both encoders.

Not supported: clip (tubelet) encoders, overlapping-patch AudioMAE, relative-position models.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

import torch
from torch import Tensor, nn

from avpretrain.arguments import check_choice
from avpretrain.models.checkpoint_io import listing, load_checkpoint, strip_prefixes, unwrap_state
from avpretrain.models.pos_embed import interpolate_pos_embed
from avpretrain.models.vit import ViTEncoder

logger = logging.getLogger(__name__)

Layout = Literal["image", "time_freq"]
VIT_KEYS = ("cls_token", "patch_embed.proj.weight", "patch_embed.proj.bias")  # + blocks., norm.
# Source entries with no counterpart in an encoder: MAE decoders and classifier heads.
IGNORED_VIT_PREFIXES = ("decoder_", "decoder.", "mask_token")
CLASSIFIER_PREFIX = "head."  # timm / MAE / AudioMAE classifier: offered, not loaded
IGNORED_CAVMAE_PREFIXES = ("decoder_", "mask_token", "mlp_head.", "norm.")
AUDIOSET_MEL_BINS = 128  # AudioMAE and CAV-MAE fbanks; fixes the frequency rows of their grids
CAVMAE_LAYER_NORM_EPS = 1e-5  # CAV-MAE builds its blocks with nn.LayerNorm's default eps


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        loaded: our parameter names that were overwritten.
        ignored: source entries deliberately left out (decoders, heads, unused norms).
        interpolated: our parameter name -> "source grid -> our grid" where a table was resized.
        missing: our parameters left as they were (only with ``strict=False``).
        unexpected: source entries that were not understood (only with ``strict=False``).
        mismatched: "name: source shape vs ours" (only with ``strict=False``).
        classifier: the source's classifier head (``head.weight`` [C, D], ``head.bias`` [C]) as
            ``{"weight", "bias"}``; empty when it has none.
    """

    loaded: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    interpolated: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    classifier: dict[str, Tensor] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: counts, resized tables and anything left out."""
        parts = [f"loaded {len(self.loaded)}", f"ignored {len(self.ignored)}"]
        parts += [f"interpolated {k} {v}" for k, v in self.interpolated.items()]
        if self.classifier:
            parts.append(f"classifier of {self.classifier['weight'].shape[0]} classes offered")
        for name in ("missing", "unexpected", "mismatched"):
            if getattr(self, name):
                parts.append(f"{name} {listing(getattr(self, name))}")
        return "; ".join(parts)


def _as_state(path_or_state: str | Path | Mapping[str, Tensor]) -> tuple[dict[str, Tensor], str]:
    if isinstance(path_or_state, (str, Path)):
        return load_checkpoint(path_or_state), str(path_or_state)
    return unwrap_state(path_or_state, "state dict"), "state dict"


def _check_2d(encoder: ViTEncoder) -> None:
    if encoder.is_clip:
        raise ValueError(
            "weight import supports single-frame encoders (Conv2d patches); this encoder takes "
            f"clips (tubelet {encoder.tubelet}): build it with num_frames=1, tubelet=1"
        )


def _source_layout(
    rows: int, has_cls: bool, source_grid: tuple[int, int] | None, source: str
) -> tuple[int, tuple[int, int]]:
    """(class-token rows, patch grid) of a source position table of ``rows`` rows.

    A class token has its own first row, except in timm's ``no_embed_class`` models: with a
    class token the table is read with that row first, else without it.
    """
    for prefix in (1, 0) if has_cls else (0,):
        patches = rows - prefix
        if source_grid is not None and math.prod(source_grid) == patches:
            return prefix, cast("tuple[int, int]", tuple(source_grid))
        side = math.isqrt(patches)
        if source_grid is None and side * side == patches:
            return prefix, (side, side)
    cls_rows = " (+ 1 class-token row, unless no_embed_class)" if has_cls else ""
    if source_grid is None:
        raise ValueError(
            f"{source}: pos_embed has {rows} rows, not a square grid of patches{cls_rows}; "
            "pass source_grid"
        )
    raise ValueError(
        f"{source}: pos_embed has {rows} rows, source_grid {tuple(source_grid)} needs "
        f"{math.prod(source_grid)}{cls_rows}"
    )


def _convert_pos_embed(
    pos: Tensor,
    has_cls: bool,
    source_grid: tuple[int, int] | None,
    layout: Layout,
    encoder: ViTEncoder,
    report: ImportReport,
    source: str,
) -> Tensor:
    """Source table [1, (1 +) n, D] -> ours [1, our prefix + prod(our grid), D]."""
    pos = pos.reshape(1, -1, pos.shape[-1]).float()
    source_prefix, grid = _source_layout(pos.shape[1], has_cls, source_grid, source)
    table = pos[:, source_prefix:]
    if layout == "time_freq":  # (T, F) row order -> (F, T), ours
        table = table.reshape(1, *grid, -1).transpose(1, 2).reshape(1, math.prod(grid), -1)
        grid = (grid[1], grid[0])
    ours = tuple(encoder.grid_size)
    if grid != ours:
        table = interpolate_pos_embed(table, grid, ours, 0)
        report.interpolated["pos_embed"] = f"{grid} -> {ours}"
    prefix = encoder.num_prefix_tokens
    if source_prefix > prefix:
        report.ignored.append("pos_embed[:1] (class-token position; our encoder has none)")
    if source_prefix >= prefix:
        return torch.cat([pos[:, :prefix], table], dim=1)
    # no_embed_class (or no class token at all): the class token is added without a position
    if has_cls:
        report.ignored.append("pos_embed: no class-token row (no_embed_class); its position is 0")
    return torch.cat([pos.new_zeros(1, prefix, pos.shape[-1]), table], dim=1)


def _check_pool(encoder: ViTEncoder, state: Mapping[str, Tensor], source: str) -> None:
    """A global-pool checkpoint (``fc_norm``, no final ``norm``) needs a ``pool="fc_norm"`` encoder.

    Any other would pool differently from how the checkpoint was trained.
    """
    fc_norm = any(k.startswith("fc_norm.") for k in state)
    norm = any(k.startswith("norm.") for k in state)
    if fc_norm and not norm and encoder.pool != "fc_norm":
        raise ValueError(
            f"{source} is a fine-tuned checkpoint with global average pooling (fc_norm.*, no "
            f"final norm.*), but the encoder pools with {encoder.pool!r}: build it with "
            "pool='fc_norm' (AVMAE: video_pool / audio_pool: fc_norm)"
        )


def import_vit(
    encoder: ViTEncoder,
    state: Mapping[str, Tensor],
    layout: Layout = "image",
    source_grid: tuple[int, int] | None = None,
    strict: bool = True,
    source: str = "state dict",
) -> ImportReport:
    """Load a timm / MAE-style ViT state dict into ``encoder``.

    Keys: ``cls_token``, ``pos_embed``, ``patch_embed.proj.*``, ``blocks.N.*``, and ``norm.*``
    or (global-pool fine-tuned checkpoints, into a ``pool="fc_norm"`` encoder) ``fc_norm.*``.
    MAE decoders (``decoder_*``, ``mask_token``) are ignored; a classifier ``head.*`` is left
    out and offered as ``report.classifier``; a class token is dropped (with its position) when
    ``encoder`` has none; a table without a class-token row (timm ``no_embed_class``) gives
    the class token no position.

    Args:
        encoder: a single-frame encoder; overwritten in place.
        state: source state dict (wrapper prefixes are stripped).
        layout: "image"; or "time_freq" for AudioMAE-style [B, 1, T, F] inputs into our
            [B, 1, F, T] encoder (kernel transposed, position table reordered).
        source_grid: the source's patch grid in its own order ((T, F) for "time_freq");
            defaults to a square grid. Tables on other grids than ours are resized bicubically.
        strict: raise on missing, unexpected or mismatching entries instead of reporting them.
        source: what ``state`` came from, for messages.

    Raises:
        ValueError: bad layout, clip encoder, or (``strict``) entries that do not fit.
    """
    check_choice("layout", layout, Layout)
    _check_2d(encoder)
    state = strip_prefixes(state)
    _check_pool(encoder, state, source)
    report = ImportReport()
    mapped: dict[str, Tensor] = {}
    for key, value in state.items():
        if key == "pos_embed":
            mapped[key] = _convert_pos_embed(
                value, "cls_token" in state, source_grid, layout, encoder, report, source
            )
        elif key == "cls_token" and encoder.cls_token is None:
            report.ignored.append("cls_token (our encoder has none)")
        elif key == "patch_embed.proj.weight" and layout == "time_freq":
            mapped[key] = value.transpose(-1, -2)  # [D, C, kT, kF] -> [D, C, kF, kT]
        elif key in VIT_KEYS or key.startswith(("blocks.", "norm.", "fc_norm.")):
            mapped[key] = value
        elif key.startswith(CLASSIFIER_PREFIX) and key.count(".") == 1:
            report.classifier[key.removeprefix(CLASSIFIER_PREFIX)] = value
            report.ignored.append(f"{key} (classifier, offered as report.classifier)")
        elif key.startswith(IGNORED_VIT_PREFIXES):
            report.ignored.append(key)
        else:
            report.unexpected.append(key)
    return _load(encoder, mapped, report, strict, source)


def _load(
    encoder: nn.Module,
    mapped: dict[str, Tensor],
    report: ImportReport,
    strict: bool,
    source: str,
) -> ImportReport:
    targets = encoder.state_dict()
    report.missing = [k for k in targets if k not in mapped]
    report.unexpected += [k for k in mapped if k not in targets]
    wrong = [k for k, v in mapped.items() if k in targets and v.shape != targets[k].shape]
    report.mismatched = [
        f"{k}: {tuple(mapped[k].shape)} vs ours {tuple(targets[k].shape)}" for k in wrong
    ]
    problems = [
        f"{name} {listing(getattr(report, name))}"
        for name in ("missing", "unexpected", "mismatched")
        if getattr(report, name)
    ]
    if problems and strict:
        raise ValueError(f"{source} does not fit the encoder: {'; '.join(problems)}")
    with torch.no_grad():
        for key, value in mapped.items():
            if key in targets and key not in wrong:
                targets[key].copy_(value)
                report.loaded.append(key)
    log = logger.warning if problems else logger.info
    log("weights from %s: %s", source, report.summary())
    return report


def import_mae(
    encoder: ViTEncoder,
    path_or_state: str | Path | Mapping[str, Tensor],
    source_grid: tuple[int, int] | None = None,
    strict: bool = True,
) -> ImportReport:
    """Load an MAE / timm ImageNet ViT (pretraining or fine-tuned checkpoint) into ``encoder``."""
    state, source = _as_state(path_or_state)
    return import_vit(encoder, state, "image", source_grid, strict, source)


def import_audiomae(
    encoder: ViTEncoder,
    path_or_state: str | Path | Mapping[str, Tensor],
    num_mel_bins: int = AUDIOSET_MEL_BINS,
    source_grid: tuple[int, int] | None = None,
    strict: bool = True,
) -> ImportReport:
    """Load an AudioMAE encoder (input [B, 1, T, F]) into our [B, 1, F, T] audio ``encoder``.

    Args:
        encoder: the audio encoder; overwritten in place.
        path_or_state: checkpoint file, or its state dict.
        num_mel_bins: AudioMAE's input height in frequency; with its patch kernel this fixes
            the frequency rows of its grid, the position table gives the time columns.
        source_grid: AudioMAE's grid as (T, F), overriding the above (64 x 8 for 1024 x 128).
        strict: raise on entries that do not fit instead of reporting them.
    """
    state, source = _as_state(path_or_state)
    state = strip_prefixes(state)
    if source_grid is None:
        if "patch_embed.proj.weight" not in state or "pos_embed" not in state:
            raise ValueError(f"{source}: no patch_embed.proj.weight / pos_embed; not an AudioMAE")
        freq = num_mel_bins // state["patch_embed.proj.weight"].shape[-1]
        total = state["pos_embed"].shape[-2]
        # a class-token row first, unless no_embed_class
        prefixes = (1, 0) if "cls_token" in state else (0,)
        rows = next((total - p for p in prefixes if freq and (total - p) % freq == 0), None)
        if rows is None:
            raise ValueError(
                f"{source}: {total} position rows do not fill {freq} frequency rows of "
                f"{num_mel_bins} mel bins (overlapping-patch AudioMAE is not supported); pass "
                "source_grid"
            )
        source_grid = (rows // freq, freq)
    return import_vit(encoder, state, "time_freq", source_grid, strict, source)


def _split_cavmae(
    state: Mapping[str, Tensor], report: ImportReport
) -> dict[str, dict[str, Tensor]]:
    """CAV-MAE names -> one timm-style state dict per modality ("a", "v")."""
    # Modality-specific depth: the shared blocks follow it in our encoders.
    numbers = {
        m: [int(k.split(".")[1]) for k in state if k.startswith(f"blocks_{m}.")] for m in "av"
    }
    specific = {m: 1 + max(numbers[m], default=-1) for m in "av"}
    out: dict[str, dict[str, Tensor]] = {"a": {}, "v": {}}
    for key, value in state.items():
        if hit := re.fullmatch(r"patch_embed_([av])\.(proj\..+)", key):
            out[hit[1]][f"patch_embed.{hit[2]}"] = value
        elif hit := re.fullmatch(r"(pos_embed|modality)_([av])", key):
            out[hit[2]][hit[1]] = value
        elif hit := re.fullmatch(r"norm_([av])\.(.+)", key):
            out[hit[1]][f"norm.{hit[2]}"] = value
        elif hit := re.fullmatch(r"blocks_([av])\.(\d+)\.((?:norm[12]|attn|mlp)\..+)", key):
            out[hit[1]][f"blocks.{hit[2]}.{hit[3]}"] = value
        elif hit := re.fullmatch(r"blocks_u\.(\d+)\.((?:attn|mlp)\..+)", key):
            for m in "av":  # the shared layer's attention and MLP go to both encoders
                out[m][f"blocks.{specific[m] + int(hit[1])}.{hit[2]}"] = value
        elif hit := re.fullmatch(r"blocks_u\.(\d+)\.(norm[12])_([av])\.(.+)", key):
            out[hit[3]][f"blocks.{specific[hit[3]] + int(hit[1])}.{hit[2]}.{hit[4]}"] = value
        elif re.fullmatch(r"blocks_[av]\.\d+\.norm[12]_[av]\..+|blocks_u\.\d+\.norm[12]\..+", key):
            report.ignored.append(key)  # norms CAV-MAE's per-modality forward never uses
        elif key.startswith(IGNORED_CAVMAE_PREFIXES):
            report.ignored.append(key)
        else:
            report.unexpected.append(key)
    return out


def import_cavmae(
    audio_encoder: ViTEncoder,
    video_encoder: ViTEncoder,
    path_or_state: str | Path | Mapping[str, Tensor],
    num_mel_bins: int = AUDIOSET_MEL_BINS,
    strict: bool = True,
    layer_norm_eps: float | None = CAVMAE_LAYER_NORM_EPS,
) -> ImportReport:
    """Load CAV-MAE (``CAVMAE`` or ``CAVMAEFT``) into an audio and a video encoder.

    Each encoder reproduces CAV-MAE's modality-specific encoding (its ``forward_feat``):
    ``blocks_a.i`` -> audio ``blocks.i``; the shared ``blocks_u.j`` (attention and MLP, with the
    ``norm*_a`` norms) -> audio ``blocks.(n_a + j)``; ``norm_a`` -> ``norm``; ``modality_a`` is
    added into ``pos_embed`` (both are added to every token); likewise for video. The joint
    path (``blocks_u.j.norm1/norm2``, ``norm``), decoders and ``mlp_head`` are ignored.

    Args:
        audio_encoder: depth ``n_a + n_u`` (12 for CAV-MAE), ``cls_token=False``, [B, 1, F, T]
            input (CAV-MAE's audio grid is already frequency-major).
        video_encoder: depth ``n_v + n_u``, ``cls_token=False``.
        path_or_state: checkpoint file, or its state dict.
        num_mel_bins: CAV-MAE's fbank height; fixes the frequency rows of its audio grid.
        strict: raise on entries that do not fit instead of reporting them.
        layer_norm_eps: eps set on both encoders' LayerNorms (CAV-MAE uses 1e-5, ours 1e-6);
            ``None`` keeps ours. Module attributes, not state-dict entries.

    Returns:
        One report; our names carry ``audio_encoder.`` / ``video_encoder.`` prefixes.
    """
    for name, enc in (("audio", audio_encoder), ("video", video_encoder)):
        if enc.cls_token is not None:
            raise ValueError(
                f"CAV-MAE has no class token: build the {name} encoder cls_token=False"
            )
    state, source = _as_state(path_or_state)
    report = ImportReport()
    parts = _split_cavmae(strip_prefixes(state), report)
    if report.unexpected and strict:
        raise ValueError(f"{source}: not CAV-MAE entries: {listing(report.unexpected)}")
    encoders = {"a": ("audio_encoder", audio_encoder), "v": ("video_encoder", video_encoder)}
    for m, (name, enc) in encoders.items():
        part = parts[m]
        if "pos_embed" in part and "modality" in part:
            part["pos_embed"] = part["pos_embed"] + part.pop("modality")
        elif strict:
            raise ValueError(f"{source}: needs both pos_embed_{m} and modality_{m}")
        grid = None  # video: square
        if m == "a" and "pos_embed" in part and "patch_embed.proj.weight" in part:
            rows = max(num_mel_bins // part["patch_embed.proj.weight"].shape[-2], 1)
            grid = (rows, part["pos_embed"].shape[-2] // rows)
        try:
            sub = import_vit(enc, part, "image", grid, strict, f"{source} [{name}]")
        except ValueError as err:
            hint = f"CAV-MAE blocks_{m}.i -> blocks.i, then blocks_u.j -> the last blocks"
            raise ValueError(f"{err} ({hint})") from None
        report.loaded += [f"{name}.{k}" for k in sub.loaded]
        report.ignored += sub.ignored
        report.interpolated.update({f"{name}.{k}": v for k, v in sub.interpolated.items()})
        for attr in ("missing", "unexpected", "mismatched"):
            getattr(report, attr).extend(f"{name}.{k}" for k in getattr(sub, attr))
        if layer_norm_eps is not None:
            for module in enc.modules():
                if isinstance(module, nn.LayerNorm):
                    module.eps = layer_norm_eps
    logger.info("CAV-MAE weights from %s: %s", source, report.summary())
    return report


IMPORTERS = ("mae", "audiomae", "cavmae")


def import_weights(
    model: nn.Module, kind: str, path: str | Path, strict: bool = True
) -> ImportReport:
    """Config entry point: load a checkpoint into ``model.audio_encoder`` / ``.video_encoder``.

    Args:
        model: has ``audio_encoder`` and ``video_encoder`` (e.g. :class:`AVMAE`).
        kind: "mae" (timm / MAE ViT -> video encoder), "audiomae" (-> audio encoder) or
            "cavmae" (-> both).
        path: checkpoint file.
        strict: raise on entries that do not fit instead of reporting them.
    """
    audio_encoder = cast(ViTEncoder, model.audio_encoder)
    video_encoder = cast(ViTEncoder, model.video_encoder)
    if kind == "mae":
        return import_mae(video_encoder, path, strict=strict)
    if kind == "audiomae":
        return import_audiomae(audio_encoder, path, strict=strict)
    if kind == "cavmae":
        return import_cavmae(audio_encoder, video_encoder, path, strict=strict)
    raise ValueError(f"unknown weight kind {kind!r}; choose one of {IMPORTERS}")
