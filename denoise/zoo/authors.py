"""The authors' released weights, renamed into this suite's networks: ``denoise-zoo import --from NAME FILE``.

Each source is the layout of one authors' code, read from their public repositories (the key names only; no code
is taken): a rename of every parameter, and the network's arguments read from the tensors' shapes, so that the
released file of any configuration (gray or colour, width 32 or 64) gives the spec of the same network here.
A file is read with ``weights_only=True`` (:func:`denoise.checkpoint.safe_load`): a pickled module (as the DnCNN
authors' own ``model.pth``) is refused, never unpickled. Every key of the file must be used, and every weight of
the network filled: a file of another task (SwinIR for super-resolution, Restormer for dual-pixel deblurring)
is an error that names the keys, not a partial load.

Where the authors pad differently from this suite, the spec records their mode (``pad_mode``), so that their
weights give their outputs at every size: NAFNet pads with zeros (``check_image_size``), KAIR's DRUNet test
replicates the edge (``test_pad``); FFDNet replicates already, and Restormer's and SwinIR's tests reflect, as
here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the renames need no torch: `denoise-zoo --help` answers without it
    import torch

    Tensors = dict[str, torch.Tensor]


class AuthorsWeightsError(ValueError):
    """The file is not the named authors' weights for denoising (unknown, missing or unused keys)."""


@dataclass(frozen=True)
class Source:
    """One authors' release: where it comes from, the rename, and the spec read from the shapes."""

    network: str
    origin: str
    rename: Callable[[str], str | None]
    spec: Callable[[Tensors], dict[str, Any]]
    #: the pad mode of the authors' inference where it differs from the suite's network (its ``pad_mode``)
    pad_mode: str | None = None


def _count(state: Mapping[str, torch.Tensor], pattern: str) -> int:
    """How many distinct indices fill ``{}`` in keys matching ``pattern`` (e.g. ``encoders.0.{}.conv1.weight``)."""
    regex = re.compile("^" + re.escape(pattern).replace(r"\{\}", r"(\d+)") + "$")
    return len({match.group(1) for key in state if (match := regex.match(key))})


def _renamer(*rules: tuple[str, str]) -> Callable[[str], str | None]:
    """Regex substitutions applied in order (a rule whose replacement is ``None``-like drops the key)."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]

    def rename(key: str) -> str | None:
        for pattern, replacement in compiled:
            if pattern.search(key):
                if replacement == "<drop>":
                    return None
                key = pattern.sub(replacement, key)
        return key

    return rename


# ---- DnCNN: cszn/DnCNN's PyTorch model (TrainingCodes/dncnn_pytorch): ``dncnn.{i}``, the same layout as ours;
# or KAIR's release (models/network_dncnn.py, BatchNorm merged): ``model.{i}``, every conv with a bias
def _dncnn_spec(state: Tensors) -> dict[str, Any]:
    first = state["model.0.weight" if "model.0.weight" in state else "dncnn.0.weight"]
    convs = sum(1 for key, value in state.items() if key.endswith(".weight") and value.dim() == 4)
    spec = {"_target_": "denoise.models.dncnn.DnCNN", "in_channels": first.shape[1], "depth": convs,
            "channels": first.shape[0]}  # fmt: skip
    if not any(key.endswith("running_mean") for key in state):
        spec["batch_norm"] = False
    return spec


# ---- FFDNet: KAIR models/network_ffdnet.py, ``model.{i}`` (convs at even indices, ReLUs between)
def _ffdnet_spec(state: Tensors) -> dict[str, Any]:
    convs = sorted(int(m.group(1)) for key in state if (m := re.match(r"^model\.(\d+)\.weight$", key)))
    if not convs:
        raise AuthorsWeightsError("no 'model.<i>.weight' keys: not KAIR's FFDNet")
    return {"_target_": "denoise.models.ffdnet.FFDNet", "in_channels": state[f"model.{convs[-1]}.weight"].shape[0] // 4,
            "channels": state["model.0.weight"].shape[0], "layers": len(convs)}  # fmt: skip


# ---- DRUNet: KAIR models/network_unet.py UNetRes (m_head, m_down1-3, m_body, m_up3-1, m_tail; ResBlock.res)
def _drunet_spec(state: Tensors) -> dict[str, Any]:
    blocks = _count(state, "m_body.{}.res.0.weight")
    widths = [state["m_head.weight"].shape[0]] + [state[f"m_down{k}.{blocks}.weight"].shape[0] for k in (1, 2, 3)]
    return {"_target_": "denoise.models.drunet.DRUNet", "in_channels": state["m_tail.weight"].shape[0],
            "widths": widths, "blocks": blocks}  # fmt: skip


# ---- NAFNet: megvii-research/NAFNet basicsr/models/archs/NAFNet_arch.py (checkpoints under 'params')
def _nafnet_spec(state: Tensors) -> dict[str, Any]:
    levels = _count(state, "encoders.{}.0.conv1.weight")
    return {
        "_target_": "denoise.models.nafnet.NAFNet", "in_channels": state["intro.weight"].shape[1],
        "width": state["intro.weight"].shape[0],
        "enc_blocks": [_count(state, f"encoders.{i}.{{}}.conv1.weight") for i in range(levels)],
        "middle_blocks": _count(state, "middle_blks.{}.conv1.weight"),
        "dec_blocks": [_count(state, f"decoders.{i}.{{}}.conv1.weight") for i in range(levels)],
    }  # fmt: skip


# ---- Restormer: swz30/Restormer basicsr/models/archs/restormer_arch.py (checkpoints under 'params')
_RESTORMER_LEVELS = ("encoder_level1", "encoder_level2", "encoder_level3", "latent")


def _ffn_expansion(dim: int, hidden: list[int]) -> float:
    """The factor ``f`` with ``int(dim * 2**level * f) == hidden[level]`` at every level (2.66 in the paper)."""
    for factor in (2.66, *(round(h / (dim * 2**i), 6) + 1e-6 for i, h in enumerate(hidden))):
        if all(int(dim * 2**i * factor) == h for i, h in enumerate(hidden)):
            return factor
    raise AuthorsWeightsError(f"Restormer's feed-forward widths {hidden} fit no single expansion factor of dim {dim}")


def _restormer_spec(state: Tensors) -> dict[str, Any]:
    dim = state["patch_embed.proj.weight"].shape[0]
    hidden = [state[f"{level}.0.ffn.project_in.weight"].shape[0] // 2 for level in _RESTORMER_LEVELS]
    return {
        "_target_": "denoise.models.restormer.Restormer", "in_channels": state["patch_embed.proj.weight"].shape[1],
        "dim": dim, "blocks": [_count(state, f"{level}.{{}}.attn.temperature") for level in _RESTORMER_LEVELS],
        "refinement_blocks": _count(state, "refinement.{}.attn.temperature"),
        "heads": [state[f"{level}.0.attn.temperature"].shape[0] for level in _RESTORMER_LEVELS],
        "ffn_expansion": _ffn_expansion(dim, hidden),
        # the authors' LayerNorm_type: 'WithBias' has a bias per norm, 'BiasFree' (Gaussian and real denoising) none
        "layer_norm": "with_bias" if "encoder_level1.0.norm1.body.bias" in state else "bias_free",
    }  # fmt: skip


# ---- SwinIR: JingyunLiang/SwinIR models/network_swinir.py, denoising (upsampler '', resi_connection '1conv')
def _swinir_spec(state: Tensors) -> dict[str, Any]:
    layers = _count(state, "layers.{}.conv.weight")
    embed_dim = state["conv_first.weight"].shape[0]
    table = state["layers.0.residual_group.blocks.0.attn.relative_position_bias_table"]
    return {
        "_target_": "denoise.models.swinir.SwinIR", "in_channels": state["conv_first.weight"].shape[1],
        "embed_dim": embed_dim,
        "depths": [_count(state, f"layers.{i}.residual_group.blocks.{{}}.norm1.weight") for i in range(layers)],
        "heads": [state[f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table"].shape[1]
                  for i in range(layers)],
        "window": (math.isqrt(table.shape[0]) + 1) // 2,
        "mlp_ratio": state["layers.0.residual_group.blocks.0.mlp.fc1.weight"].shape[0] / embed_dim,
    }  # fmt: skip


SOURCES: dict[str, Source] = {
    "dncnn": Source("DnCNN", "cszn/DnCNN TrainingCodes/dncnn_pytorch (a state dict of its model), or cszn/KAIR "
                    "model_zoo dncnn_*.pth", _renamer((r"^model\.", "dncnn.")), _dncnn_spec),
    # FFDNet: replicates, as ours
    "ffdnet": Source("FFDNet", "cszn/KAIR model_zoo ffdnet_*.pth", _renamer((r"^model\.", "body.")), _ffdnet_spec),
    "drunet": Source(
        "DRUNet", "cszn/DPIR and cszn/KAIR model_zoo drunet_*.pth",
        _renamer((r"^m_head\.", "head."), (r"^m_tail\.", "tail."), (r"^m_down(\d)\.",
                 lambda m: f"downs.{int(m.group(1)) - 1}."),
                 (r"^m_body\.", "body."), (r"^m_up(\d)\.", lambda m: f"ups.{3 - int(m.group(1))}."),
                 (r"\.res\.", ".body.")),
        _drunet_spec, pad_mode="replicate"),
    "nafnet": Source("NAFNet", "megvii-research/NAFNet NAFNet-SIDD-width{32,64}.pth",
                     _renamer((r"^middle_blks\.", "middle.")), _nafnet_spec, pad_mode="zeros"),
    "restormer": Source(
        "Restormer", "swz30/Restormer Denoising/pretrained_models (gaussian_*, real_denoising.pth)",
        _renamer((r"^patch_embed\.proj\.", "patch_embed."),
                 (r"^encoder_level(\d)\.", lambda m: f"encoders.{int(m.group(1)) - 1}."),
                 (r"^down(\d)_\d\.body\.", lambda m: f"downs.{int(m.group(1)) - 1}."),
                 (r"^up(\d)_\d\.body\.", lambda m: f"ups.{4 - int(m.group(1))}."),
                 (r"^reduce_chan_level(\d)\.", lambda m: f"reduce.{3 - int(m.group(1))}."),
                 (r"^decoder_level(\d)\.", lambda m: f"decoders.{3 - int(m.group(1))}."),
                 (r"\.(norm\d)\.body\.", r".\1.")),
        _restormer_spec),  # the authors' tests reflect, as ours
    "swinir": Source(
        "SwinIR", "JingyunLiang/SwinIR releases 005_colorDN_DFWB_s128w8_SwinIR-M_noise*.pth (and grayDN)",
        _renamer((r"\.attn_mask$", "<drop>"), (r"\.relative_position_index$", "<drop>"),
                 (r"^patch_embed\.norm\.", "embed_norm."), (r"\.residual_group\.blocks\.", ".blocks."),
                 (r"\.mlp\.fc1\.", ".mlp.0."), (r"\.mlp\.fc2\.", ".mlp.2.")),
        _swinir_spec),  # the network's own check_image_size reflects, as ours
}  # fmt: skip


#: ``--pad-mode``: the authors' inference's padding (the default for their weights), or the suite's (reflect)
PAD_CHOICES = ("authors", "ours")


def convert(
    source: str, state: Mapping[str, torch.Tensor], pad_mode: str = "authors"
) -> tuple[dict[str, Any], Tensors]:
    """The authors' ``state`` of ``source`` as ``(spec, state dict)`` of this suite's network, padding as the
    authors' inference does (``pad_mode="authors"``) or as the suite does (``"ours"``)."""
    if source not in SOURCES:
        raise AuthorsWeightsError(f"--from {source!r}: expected one of {sorted(SOURCES)}")
    entry = SOURCES[source]
    state = dict(state)
    try:
        spec = entry.spec(state)
    except KeyError as err:
        sample = sorted(state)[:6]
        raise AuthorsWeightsError(
            f"this is not {entry.network}'s released weights ({entry.origin}): no key {err.args[0]!r} "
            f"(the file's first keys: {sample})"
        ) from None
    if pad_mode not in PAD_CHOICES:
        raise AuthorsWeightsError(f"--pad-mode {pad_mode!r}: expected one of {list(PAD_CHOICES)}")
    if pad_mode == "authors" and entry.pad_mode is not None:
        spec["pad_mode"] = entry.pad_mode
    renamed: Tensors = {}
    for key, value in state.items():
        new = entry.rename(key)
        if new is not None:
            renamed[new] = value
    return spec, renamed
