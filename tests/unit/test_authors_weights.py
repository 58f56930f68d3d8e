"""``denoise-zoo import --from X FILE``: the authors' released weights renamed into our networks.

The authors' state dicts are built here from their key names (read from their public code: NAFNet_arch.py,
KAIR's network_unet.py and network_ffdnet.py, restormer_arch.py, network_swinir.py) with random values, and
where the network is small enough its forward is written here again from those names alone (functional, float64,
padding as the authors' inference does): the converted network must give the same output at sizes that need
padding. The DnCNN authors' real weights must give the paper's Set12 score.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from denoise import zoo
from denoise.checkpoint import CheckpointError, load_network
from denoise.cli.zoo import main as zoo_main
from denoise.data.io import array2tensor, read_image
from denoise.zoo.authors import AuthorsWeightsError, convert
from tests.helpers import SHARED_DATA

Tensors = dict[str, torch.Tensor]


def _fill(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> Tensors:
    generator = torch.Generator().manual_seed(seed)
    # float32 values, as released: the float64 references below compute with the very same numbers
    return {key: torch.randn(shape, generator=generator) * 0.2 for key, shape in shapes.items()}


def _double(state: Tensors) -> Tensors:
    return {key: value.double() for key, value in state.items()}


@pytest.fixture(autouse=True)
def _team_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    index = tmp_path / "zoo" / "index.yaml"
    monkeypatch.setenv("DENOISE_ZOO", str(index))
    yield index


def _import(tmp_path: Path, source: str, state: Tensors, name: str, *extra: str) -> nn.Module:
    """The CLI's path: the state dict saved as the authors do, imported, then loaded back as ``zoo:<name>``."""
    file = tmp_path / f"{name}.pth"
    torch.save({"params": state}, file)
    assert zoo_main(["import", "--from", source, str(file), "--name", name, *extra]) == 0
    net, _ = load_network(f"zoo:{name}")
    return net.double()


# ---------------------------------------------------------------- NAFNet (megvii-research/NAFNet)
def _nafnet_block(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.conv1.weight": (2 * c, c, 1, 1), f"{prefix}.conv1.bias": (2 * c,),
            f"{prefix}.conv2.weight": (2 * c, 1, 3, 3), f"{prefix}.conv2.bias": (2 * c,),
            f"{prefix}.conv3.weight": (c, c, 1, 1), f"{prefix}.conv3.bias": (c,),
            f"{prefix}.sca.1.weight": (c, c, 1, 1), f"{prefix}.sca.1.bias": (c,),
            f"{prefix}.conv4.weight": (2 * c, c, 1, 1), f"{prefix}.conv4.bias": (2 * c,),
            f"{prefix}.conv5.weight": (c, c, 1, 1), f"{prefix}.conv5.bias": (c,),
            f"{prefix}.norm1.weight": (c,), f"{prefix}.norm1.bias": (c,), f"{prefix}.norm2.weight": (c,),
            f"{prefix}.norm2.bias": (c,), f"{prefix}.beta": (1, c, 1, 1), f"{prefix}.gamma": (1, c, 1, 1)}  # fmt: skip


def nafnet_keys(channels: int, width: int, enc: list[int], middle: int, dec: list[int]) -> dict[str, tuple]:
    shapes = {"intro.weight": (width, channels, 3, 3), "intro.bias": (width,),
              "ending.weight": (channels, width, 3, 3), "ending.bias": (channels,)}  # fmt: skip
    c = width
    for i, count in enumerate(enc):
        for j in range(count):
            shapes |= _nafnet_block(f"encoders.{i}.{j}", c)
        shapes |= {f"downs.{i}.weight": (2 * c, c, 2, 2), f"downs.{i}.bias": (2 * c,)}
        c *= 2
    for j in range(middle):
        shapes |= _nafnet_block(f"middle_blks.{j}", c)
    for i, count in enumerate(dec):
        shapes[f"ups.{i}.0.weight"] = (2 * c, c, 1, 1)
        c //= 2
        for j in range(count):
            shapes |= _nafnet_block(f"decoders.{i}.{j}", c)
    return shapes


def nafnet_reference(w: Tensors, x: torch.Tensor, levels: int) -> torch.Tensor:
    """NAFNet's forward from the authors' names: zero padding to 2^levels (check_image_size), cropped back."""

    def norm(t: torch.Tensor, p: str) -> torch.Tensor:
        mu = t.mean(1, keepdim=True)
        var = (t - mu).pow(2).mean(1, keepdim=True)
        return w[f"{p}.weight"][:, None, None] * (t - mu) / (var + 1e-6).sqrt() + w[f"{p}.bias"][:, None, None]

    def conv(t: torch.Tensor, p: str, **kw) -> torch.Tensor:
        return F.conv2d(t, w[f"{p}.weight"], w.get(f"{p}.bias"), **kw)

    def gate(t: torch.Tensor) -> torch.Tensor:
        a, b = t.chunk(2, dim=1)
        return a * b

    def block(t: torch.Tensor, p: str) -> torch.Tensor:
        y = gate(conv(conv(norm(t, f"{p}.norm1"), f"{p}.conv1"), f"{p}.conv2", padding=1, groups=t.shape[1] * 2))
        y = conv(y * conv(y.mean((2, 3), keepdim=True), f"{p}.sca.1"), f"{p}.conv3")
        y = t + y * w[f"{p}.beta"]
        z = conv(gate(conv(norm(y, f"{p}.norm2"), f"{p}.conv4")), f"{p}.conv5")
        return y + z * w[f"{p}.gamma"]

    def run(t: torch.Tensor, prefix: str) -> torch.Tensor:
        j = 0
        while f"{prefix}.{j}.beta" in w:
            t, j = block(t, f"{prefix}.{j}"), j + 1
        return t

    h, wd = x.shape[-2:]
    m = 2**levels
    inp = F.pad(x, (0, (m - wd % m) % m, 0, (m - h % m) % m))  # zeros
    t, skips = conv(inp, "intro", padding=1), []
    for i in range(levels):
        t = run(t, f"encoders.{i}")
        skips.append(t)
        t = conv(t, f"downs.{i}", stride=2)
    t = run(t, "middle_blks")
    for i in range(levels):
        t = run(F.pixel_shuffle(conv(t, f"ups.{i}.0"), 2) + skips.pop(), f"decoders.{i}")
    return (conv(t, "ending", padding=1) + inp)[..., :h, :wd]


def test_nafnet_import_gives_the_authors_output_with_their_zero_padding(tmp_path: Path) -> None:
    shapes = nafnet_keys(3, 8, [1, 2], 1, [1, 1])
    state = _fill(shapes)
    net = _import(tmp_path, "nafnet", state, "nafnet_tiny")
    assert net.pad_mode == "zeros"
    x = torch.rand(1, 3, 37, 45, dtype=torch.float64)  # 481x321-like: no multiple of 4
    with torch.no_grad():
        ours = net(x)
    torch.testing.assert_close(ours, nafnet_reference(_double(state), x, levels=2), rtol=0, atol=1e-12)
    # the suite's reflect padding gives another output at this size, and the same where no padding is needed
    reflect = _import(tmp_path, "nafnet", state, "nafnet_tiny_ours", "--pad-mode", "ours")
    assert reflect.pad_mode == "reflect"
    with torch.no_grad():
        assert (reflect(x) - ours).abs().max() > 1e-4
        even = torch.rand(1, 3, 32, 40, dtype=torch.float64)
        torch.testing.assert_close(reflect(even), nafnet_reference(_double(state), even, 2), rtol=0, atol=1e-12)


def test_nafnet_spec_is_read_from_the_shapes() -> None:
    spec, _ = convert("nafnet", _fill(nafnet_keys(3, 32, [2, 2, 4, 8], 12, [2, 2, 2, 2])))
    assert spec == {"_target_": "denoise.models.nafnet.NAFNet", "in_channels": 3, "width": 32,
                    "enc_blocks": [2, 2, 4, 8], "middle_blocks": 12, "dec_blocks": [2, 2, 2, 2],
                    "pad_mode": "zeros"}  # fmt: skip
    from denoise.config.specs import build

    net = build(spec, kind="network")
    assert sum(p.numel() for p in net.parameters()) == 29_159_715  # NAFNet-SIDD-width32, the authors' count


# ---------------------------------------------------------------- DRUNet (KAIR network_unet.UNetRes)
def drunet_keys(channels: int, nc: list[int], nb: int) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {"m_head.weight": (nc[0], channels + 1, 3, 3), "m_tail.weight": (channels, nc[0], 3, 3)}

    def res(prefix: str, c: int) -> None:
        shapes.update({f"{prefix}.res.0.weight": (c, c, 3, 3), f"{prefix}.res.2.weight": (c, c, 3, 3)})

    for k in (1, 2, 3):
        for j in range(nb):
            res(f"m_down{k}.{j}", nc[k - 1])
        shapes[f"m_down{k}.{nb}.weight"] = (nc[k], nc[k - 1], 2, 2)
    for j in range(nb):
        res(f"m_body.{j}", nc[3])
    for k in (3, 2, 1):
        shapes[f"m_up{k}.0.weight"] = (nc[k], nc[k - 1], 2, 2)  # ConvTranspose2d(in, out): (in, out, 2, 2)
        for j in range(nb):
            res(f"m_up{k}.{j + 1}", nc[k - 1])
    return shapes


def drunet_reference(w: Tensors, x: torch.Tensor, sigma: float, nb: int) -> torch.Tensor:
    """UNetRes's forward from KAIR's names on the image and its noise-level map, replicate-padded to 8 (KAIR's
    test_pad), cropped back."""
    h, wd = x.shape[-2:]
    t = torch.cat([x, torch.full_like(x[:, :1], sigma)], dim=1)
    t = F.pad(t, (0, (8 - wd % 8) % 8, 0, (8 - h % 8) % 8), mode="replicate")

    def blocks(t: torch.Tensor, prefix: str, start: int) -> torch.Tensor:
        for j in range(start, start + nb):
            p = f"{prefix}.{j}.res"
            t = t + F.conv2d(F.relu(F.conv2d(t, w[f"{p}.0.weight"], padding=1)), w[f"{p}.2.weight"], padding=1)
        return t

    x1 = F.conv2d(t, w["m_head.weight"], padding=1)
    x2 = F.conv2d(blocks(x1, "m_down1", 0), w[f"m_down1.{nb}.weight"], stride=2)
    x3 = F.conv2d(blocks(x2, "m_down2", 0), w[f"m_down2.{nb}.weight"], stride=2)
    x4 = F.conv2d(blocks(x3, "m_down3", 0), w[f"m_down3.{nb}.weight"], stride=2)
    y = blocks(x4, "m_body", 0)
    y = blocks(F.conv_transpose2d(y + x4, w["m_up3.0.weight"], stride=2), "m_up3", 1)
    y = blocks(F.conv_transpose2d(y + x3, w["m_up2.0.weight"], stride=2), "m_up2", 1)
    y = blocks(F.conv_transpose2d(y + x2, w["m_up1.0.weight"], stride=2), "m_up1", 1)
    return F.conv2d(y + x1, w["m_tail.weight"], padding=1)[..., :h, :wd]


def test_drunet_import_gives_kairs_output_with_replicate_padding(tmp_path: Path) -> None:
    state = _fill(drunet_keys(1, [4, 8, 8, 16], 2), seed=1)
    net = _import(tmp_path, "drunet", state, "drunet_tiny")
    assert net.pad_mode == "replicate"
    x = torch.rand(1, 1, 37, 29, dtype=torch.float64)
    with torch.no_grad():
        ours = net(x, torch.tensor([25 / 255], dtype=torch.float64))
    torch.testing.assert_close(ours, drunet_reference(_double(state), x, 25 / 255, nb=2), rtol=0, atol=1e-12)


def test_drunet_spec_matches_the_papers_configuration() -> None:
    spec, _ = convert("drunet", _fill(drunet_keys(3, [64, 128, 256, 512], 4)))
    assert spec["widths"] == [64, 128, 256, 512] and spec["blocks"] == 4 and spec["in_channels"] == 3
    from denoise.config.specs import build

    assert sum(p.numel() for p in build(spec, kind="network").parameters()) == 32_640_960  # the paper's 32.64M


# ---------------------------------------------------------------- FFDNet (KAIR network_ffdnet.FFDNet)
def ffdnet_keys(channels: int, nc: int, nb: int) -> dict[str, tuple]:
    shapes = {"model.0.weight": (nc, 4 * channels + 1, 3, 3), "model.0.bias": (nc,)}
    for i in range(1, nb - 1):
        shapes |= {f"model.{2 * i}.weight": (nc, nc, 3, 3), f"model.{2 * i}.bias": (nc,)}
    last = f"model.{2 * (nb - 1)}"
    return shapes | {f"{last}.weight": (4 * channels, nc, 3, 3), f"{last}.bias": (4 * channels,)}


def ffdnet_reference(w: Tensors, x: torch.Tensor, sigma: float) -> torch.Tensor:
    h, wd = x.shape[-2:]
    t = F.pixel_unshuffle(F.pad(x, (0, wd % 2, 0, h % 2), mode="replicate"), 2)
    t = torch.cat([t, torch.full_like(t[:, :1], sigma)], dim=1)
    convs = sorted(int(k.split(".")[1]) for k in w if k.endswith(".weight"))
    for index in convs:
        t = F.conv2d(t, w[f"model.{index}.weight"], w[f"model.{index}.bias"], padding=1)
        t = F.relu(t) if index != convs[-1] else t
    return F.pixel_shuffle(t, 2)[..., :h, :wd]


def test_ffdnet_import_gives_kairs_output(tmp_path: Path) -> None:
    state = _fill(ffdnet_keys(3, 12, 5), seed=2)
    net = _import(tmp_path, "ffdnet", state, "ffdnet_tiny")
    x = torch.rand(2, 3, 21, 30, dtype=torch.float64)
    with torch.no_grad():
        ours = net(x, torch.tensor([15 / 255, 50 / 255], dtype=torch.float64))
    for i, sigma in enumerate((15 / 255, 50 / 255)):
        reference = ffdnet_reference(_double(state), x[i : i + 1], sigma)
        torch.testing.assert_close(ours[i : i + 1], reference, rtol=0, atol=1e-12)
    spec, _ = convert("ffdnet", _fill(ffdnet_keys(1, 64, 15)))
    assert (spec["in_channels"], spec["channels"], spec["layers"]) == (1, 64, 15)


# ---------------------------------------------------------------- Restormer (swz30/Restormer)
def restormer_keys(channels: int, dim: int, blocks: list[int], refinement: int, heads: list[int],
                   with_bias: bool) -> dict[str, tuple]:  # fmt: skip
    shapes: dict[str, tuple] = {"patch_embed.proj.weight": (dim, channels, 3, 3),
                                "output.weight": (channels, 2 * dim, 3, 3)}  # fmt: skip

    def level(prefix: str, count: int, c: int, h: int) -> None:
        hidden = int(c * 2.66)
        for j in range(count):
            p = f"{prefix}.{j}"
            shapes.update({f"{p}.norm1.body.weight": (c,), f"{p}.norm2.body.weight": (c,),
                           f"{p}.attn.temperature": (h, 1, 1), f"{p}.attn.qkv.weight": (3 * c, c, 1, 1),
                           f"{p}.attn.qkv_dwconv.weight": (3 * c, 1, 3, 3),
                           f"{p}.attn.project_out.weight": (c, c, 1, 1),
                           f"{p}.ffn.project_in.weight": (2 * hidden, c, 1, 1),
                           f"{p}.ffn.dwconv.weight": (2 * hidden, 1, 3, 3),
                           f"{p}.ffn.project_out.weight": (c, hidden, 1, 1)})  # fmt: skip
            if with_bias:
                shapes.update({f"{p}.norm1.body.bias": (c,), f"{p}.norm2.body.bias": (c,)})

    for i, name in enumerate(("encoder_level1", "encoder_level2", "encoder_level3", "latent")):
        level(name, blocks[i], dim * 2**i, heads[i])
    for i, name in enumerate(("down1_2", "down2_3", "down3_4")):
        shapes[f"{name}.body.0.weight"] = (dim * 2**i // 2, dim * 2**i, 3, 3)
    for i, name in zip((3, 2, 1), ("up4_3", "up3_2", "up2_1"), strict=True):
        shapes[f"{name}.body.0.weight"] = (dim * 2 ** (i + 1), dim * 2**i, 3, 3)
    shapes["reduce_chan_level3.weight"] = (4 * dim, 8 * dim, 1, 1)
    shapes["reduce_chan_level2.weight"] = (2 * dim, 4 * dim, 1, 1)
    level("decoder_level3", blocks[2], 4 * dim, heads[2])
    level("decoder_level2", blocks[1], 2 * dim, heads[1])
    level("decoder_level1", blocks[0], 2 * dim, heads[0])
    level("refinement", refinement, 2 * dim, heads[0])
    return shapes


@pytest.mark.parametrize("with_bias", [False, True])
def test_restormer_import_fills_every_weight_from_its_namesake(tmp_path: Path, with_bias: bool) -> None:
    state = _fill(restormer_keys(3, 8, [1, 2, 2, 3], 1, [1, 2, 4, 8], with_bias), seed=3)
    net = _import(tmp_path, "restormer", state, f"restormer_tiny_{with_bias}")
    ours = net.state_dict()
    assert len(ours) == len(state)
    pairs = {"encoders.0.0.attn.qkv.weight": "encoder_level1.0.attn.qkv.weight",
             "encoders.2.1.norm1.weight": "encoder_level3.1.norm1.body.weight",
             "latent.2.ffn.project_out.weight": "latent.2.ffn.project_out.weight",
             "downs.1.0.weight": "down2_3.body.0.weight", "ups.0.0.weight": "up4_3.body.0.weight",
             "ups.2.0.weight": "up2_1.body.0.weight", "reduce.0.weight": "reduce_chan_level3.weight",
             "reduce.1.weight": "reduce_chan_level2.weight",
             "decoders.0.1.attn.temperature": "decoder_level3.1.attn.temperature",
             "decoders.2.0.ffn.dwconv.weight": "decoder_level1.0.ffn.dwconv.weight",
             "refinement.0.attn.project_out.weight": "refinement.0.attn.project_out.weight",
             "patch_embed.weight": "patch_embed.proj.weight"}  # fmt: skip
    for mine, theirs in pairs.items():
        assert torch.equal(ours[mine], state[theirs]), mine
    spec, _ = convert("restormer", state)
    assert spec["layer_norm"] == ("with_bias" if with_bias else "bias_free")
    assert (spec["blocks"], spec["heads"], spec["refinement_blocks"], spec["ffn_expansion"]) == (
        [1, 2, 2, 3], [1, 2, 4, 8], 1, 2.66)  # fmt: skip


def test_restormer_paper_configuration_counts_the_papers_parameters() -> None:
    spec, _ = convert("restormer", _fill(restormer_keys(3, 48, [4, 6, 6, 8], 4, [1, 2, 4, 8], False)))
    from denoise.config.specs import build

    assert sum(p.numel() for p in build(spec, kind="network").parameters()) == 26_111_668


# ---------------------------------------------------------------- SwinIR (JingyunLiang/SwinIR, denoising)
def swinir_keys(channels: int, dim: int, depths: list[int], heads: list[int], window: int) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {}
    for name, shape in (("conv_first", (dim, channels, 3, 3)), ("conv_after_body", (dim, dim, 3, 3)),
                        ("conv_last", (channels, dim, 3, 3))):  # fmt: skip
        shapes |= {f"{name}.weight": shape, f"{name}.bias": (shape[0],)}
    for name in ("patch_embed.norm", "norm"):
        shapes |= {f"{name}.weight": (dim,), f"{name}.bias": (dim,)}
    for i, (depth, h) in enumerate(zip(depths, heads, strict=True)):
        for j in range(depth):
            p = f"layers.{i}.residual_group.blocks.{j}"
            for norm in ("norm1", "norm2"):
                shapes |= {f"{p}.{norm}.weight": (dim,), f"{p}.{norm}.bias": (dim,)}
            shapes |= {f"{p}.attn.relative_position_bias_table": ((2 * window - 1) ** 2, h),
                       f"{p}.attn.relative_position_index": (window**2, window**2),
                       f"{p}.attn.qkv.weight": (3 * dim, dim), f"{p}.attn.qkv.bias": (3 * dim,),
                       f"{p}.attn.proj.weight": (dim, dim), f"{p}.attn.proj.bias": (dim,),
                       f"{p}.mlp.fc1.weight": (2 * dim, dim), f"{p}.mlp.fc1.bias": (2 * dim,),
                       f"{p}.mlp.fc2.weight": (dim, 2 * dim), f"{p}.mlp.fc2.bias": (dim,)}  # fmt: skip
            if j % 2:  # shifted blocks carry their mask as a buffer
                shapes[f"{p}.attn_mask"] = (16, window**2, window**2)
        shapes |= {f"layers.{i}.conv.weight": (dim, dim, 3, 3), f"layers.{i}.conv.bias": (dim,)}
    return shapes


def test_swinir_import_drops_the_buffers_and_fills_every_weight(tmp_path: Path) -> None:
    state = _fill(swinir_keys(3, 12, [2, 2], [2, 3], 4), seed=4)
    buffers = [k for k in state if k.endswith(("relative_position_index", "attn_mask"))]
    assert len(buffers) == 6  # 4 indices + 2 masks (54 in the released SwinIR-M: 36 + 18)
    net = _import(tmp_path, "swinir", state, "swinir_tiny")
    ours = net.state_dict()
    assert len(ours) == len(state) - len(buffers)
    for mine, theirs in {"embed_norm.weight": "patch_embed.norm.weight",
                         "layers.1.blocks.1.mlp.0.weight": "layers.1.residual_group.blocks.1.mlp.fc1.weight",
                         "layers.0.blocks.0.mlp.2.bias": "layers.0.residual_group.blocks.0.mlp.fc2.bias",
                         "layers.1.conv.weight": "layers.1.conv.weight",
                         "layers.0.blocks.1.attn.relative_position_bias_table":
                         "layers.0.residual_group.blocks.1.attn.relative_position_bias_table"}.items():  # fmt: skip
        assert torch.equal(ours[mine], state[theirs]), mine
    spec, _ = convert("swinir", state)
    assert (spec["depths"], spec["heads"], spec["window"], spec["mlp_ratio"]) == ([2, 2], [2, 3], 4, 2.0)


# ---------------------------------------------------------------- refusals
def test_a_file_of_another_task_names_its_unused_keys(tmp_path: Path) -> None:
    state = _fill(swinir_keys(3, 12, [2], [2], 4)) | {"conv_before_upsample.0.weight": torch.zeros(64, 12, 3, 3)}
    file = tmp_path / "sr.pth"
    torch.save({"params": state}, file)
    with pytest.raises(CheckpointError, match=re.escape("unexpected keys ['conv_before_upsample.0.weight']")):
        from denoise.tasks.zoo_pack import import_authors

        import_authors("swinir", file)


def test_the_wrong_source_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "nafnet.pth"
    torch.save({"params": _fill(nafnet_keys(3, 8, [1], 1, [1]))}, file)
    assert zoo_main(["import", "--from", "drunet", str(file)]) == 2
    err = capsys.readouterr().err
    assert "not DRUNet's released weights" in err and "no key 'm_head.weight'" in err
    with pytest.raises(AuthorsWeightsError, match="expected one of"):
        convert("unet", {})


def test_a_pickled_module_is_refused_not_unpickled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "model.pth"
    torch.save(nn.Sequential(nn.Conv2d(1, 1, 3)), file)  # as the DnCNN authors' own model.pth
    assert zoo_main(["import", "--from", "dncnn", str(file)]) == 2
    assert "pickled Python objects" in capsys.readouterr().err


# ---------------------------------------------------------------- the DnCNN authors' real weights
@pytest.mark.slow  # all of Set12 through the 17-layer network
@pytest.mark.skipif(not (SHARED_DATA / "reference" / "dncnn_sigma25_gray.pt").is_file(), reason="no ../shared")
def test_dncnn_authors_weights_give_the_papers_set12_score(tmp_path: Path) -> None:
    net = _import_file(tmp_path, SHARED_DATA / "reference" / "dncnn_sigma25_gray.pt").float()
    generator = torch.Generator().manual_seed(0)
    scores = []
    for path in sorted((SHARED_DATA / "set12").glob("*.png")):
        clean = array2tensor(read_image(path, channels=1))[None]
        noisy = clean + torch.randn(clean.shape, generator=generator) * 25 / 255
        with torch.no_grad():
            out = net(noisy).clamp(0, 1)
        scores.append(10 * torch.log10(1 / (out - clean).pow(2).mean()).item())
    assert abs(np.mean(scores) - 30.44) < 0.06, np.mean(scores)  # the DnCNN paper's Table (Set12, sigma 25)


def _import_file(tmp_path: Path, file: Path) -> nn.Module:
    assert zoo_main(["import", "--from", "dncnn", str(file), "--name", "dncnn_authors"]) == 0
    card = zoo.entries()["dncnn_authors"]
    assert card["source_sha256"] == zoo.sha256(file) and card["file"] == "dncnn_authors.ckpt"
    return load_network("zoo:dncnn_authors")[0]


def test_kairs_dncnn_release_with_batch_norm_merged_gives_its_output(tmp_path: Path) -> None:
    """KAIR's dncnn_*.pth: ``model.{0,2,...}``, every conv biased, no BatchNorm; output = input - the stack."""
    shapes = {"model.0.weight": (8, 1, 3, 3), "model.0.bias": (8,)}
    for i in range(1, 4):
        shapes |= {f"model.{2 * i}.weight": (8, 8, 3, 3), f"model.{2 * i}.bias": (8,)}
    shapes |= {"model.8.weight": (1, 8, 3, 3), "model.8.bias": (1,)}
    state = _fill(shapes, seed=5)
    net = _import(tmp_path, "dncnn", state, "dncnn_kair_tiny")
    x = torch.rand(1, 1, 13, 17, dtype=torch.float64)
    t, w = x, _double(state)
    for index in range(0, 10, 2):
        t = F.conv2d(t, w[f"model.{index}.weight"], w[f"model.{index}.bias"], padding=1)
        t = F.relu(t) if index < 8 else t
    with torch.no_grad():
        torch.testing.assert_close(net(x), x - t, rtol=0, atol=1e-12)
    spec, _ = convert("dncnn", state)
    assert spec["batch_norm"] is False and spec["depth"] == 5
    from denoise.config.specs import build

    full, _ = convert("dncnn", _fill(dncnn_kair_keys(17)))
    assert sum(p.numel() for p in build(full, kind="network").parameters()) == 555_137  # 640 + 15 x (36,864 + 64) + 577


def dncnn_kair_keys(depth: int) -> dict[str, tuple]:
    shapes = {"model.0.weight": (64, 1, 3, 3), "model.0.bias": (64,)}
    for i in range(1, depth - 1):
        shapes |= {f"model.{2 * i}.weight": (64, 64, 3, 3), f"model.{2 * i}.bias": (64,)}
    last = f"model.{2 * (depth - 1)}"
    return shapes | {f"{last}.weight": (1, 64, 3, 3), f"{last}.bias": (1,)}
