"""AP-BSN: a blind-spot network behind asymmetric pixel-shuffle down-sampling, for real camera noise without
clean images.

Lee, Son, Lee, "AP-BSN: Self-Supervised Denoising for Real-World Images via Asymmetric PD and Blind-Spot
Network", CVPR 2022; the blind-spot network is their light DBSN ("DBSNl", after Wu et al., "Unpaired Learning
of Deep Image Denoising", ECCV 2020).

Why it works where Noise2Void and Neighbor2Neighbor fail: a blind-spot network predicts every pixel from its
neighbours only, which removes noise that is independent between pixels. Real sRGB noise is spatially
correlated after demosaicing, so the neighbours carry the pixel's own noise. Pixel-shuffle down-sampling (PD)
with stride ``f`` splits the image into ``f x f`` sub-images of every ``f``-th pixel: neighbours in a sub-image
are ``f`` pixels apart in the photo, where the correlation has died out. Training uses a large stride
(``pd_train`` 5) to break the correlation; inference a small one (``pd_test`` 2) to keep detail, and then
random-replacing refinement (R3): ``r3_repeats`` times, a share ``r3_p`` of the output's pixels is replaced by
the noisy input's and the blind-spot network runs on that at full resolution, without PD; the mean of the
repeats is the output. R3 runs the network ``1 + r3_repeats`` times per image.

Structure (parameter names as the authors' ``APBSN``/``DBSNl``, so their state dicts load unchanged):
``bsn.head`` a 1x1 conv + ReLU; two branches ``bsn.branch1`` (stride 2) and ``bsn.branch2`` (stride 3), each a
centrally masked ``(2s-1) x (2s-1)`` conv (its centre weight held at zero: the blind spot), two 1x1 convs,
``num_modules`` residual blocks of a 3x3 conv with dilation ``s`` and a 1x1 conv, and a 1x1 conv; ``bsn.tail``
four 1x1 convs on the two branches concatenated. No layer after the masked convs looks at more than one pixel
position without dilation ``s``, so no path reaches the centre pixel: the output at a pixel never depends on
that pixel's input.

Parameters, 128 channels, 9 modules, RGB (the authors' SIDD model): head 512; branch1 147,584 (masked 3x3) +
33,024 + 9 x 164,096 + 16,512 = 1,673,984; branch2 409,728 (masked 5x5) + the same = 1,936,128; tail 45,507;
3,656,131 in all. Receptive field of the blind-spot network: 59 x 59 (branch2: 2 + 9 x 3 = 29 a side);
``59 x pd`` pixels of the photo behind PD with stride ``pd``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CentrallyMaskedConv2d(nn.Conv2d):
    """A convolution whose kernel's centre weight is zero (held by a mask in the forward pass, so neither the
    optimizer nor a loaded state dict can bring it back): its output never sees the pixel it sits on."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        mask = torch.ones_like(self.weight)
        kernel_h, kernel_w = self.weight.shape[-2:]
        mask[:, :, kernel_h // 2, kernel_w // 2] = 0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class DilatedResidual(nn.Module):
    """``x + conv1x1(relu(conv3x3_dilated(x)))``: dilation ``stride`` keeps the blind spot of its branch."""

    def __init__(self, stride: int, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=stride, dilation=stride),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class BlindSpotBranch(nn.Module):
    """A masked ``(2s-1)``-wide conv, then only 1x1 convs and 3x3 convs dilated by ``s``."""

    def __init__(self, stride: int, channels: int, num_modules: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            CentrallyMaskedConv2d(channels, channels, kernel_size=2 * stride - 1, padding=stride - 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(inplace=True),
        ]
        layers += [DilatedResidual(stride, channels) for _ in range(num_modules)]
        layers += [nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class DBSN(nn.Module):
    """The light dilated blind-spot network (DBSNl): the output at a pixel is a function of its neighbours only."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, channels: int = 128, num_modules: int = 9) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"model.net.channels={channels}: expected an even number (the tail halves it)")
        self.head = nn.Sequential(nn.Conv2d(in_channels, channels, 1), nn.ReLU(inplace=True))
        self.branch1 = BlindSpotBranch(2, channels, num_modules)
        self.branch2 = BlindSpotBranch(3, channels, num_modules)
        self.tail = nn.Sequential(
            nn.Conv2d(2 * channels, channels, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels // 2, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // 2, channels // 2, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // 2, out_channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        return self.tail(torch.cat([self.branch1(x), self.branch2(x)], dim=1))


def pd_down(x: torch.Tensor, stride: int, pad: int = 0) -> torch.Tensor:
    """Pixel-shuffle down-sampling: the ``stride x stride`` sub-images of every ``stride``-th pixel, each padded
    by ``pad`` zeros (so the network's border effects stay inside a sub-image), tiled as one image of
    ``H + 2 * stride * pad`` by ``W + 2 * stride * pad``. ``H`` and ``W`` must be multiples of ``stride``."""
    batch, channels, height, width = x.shape
    sub_h, sub_w = height // stride + 2 * pad, width // stride + 2 * pad
    subs = F.pad(F.pixel_unshuffle(x, stride), (pad, pad, pad, pad))  # B x C*s*s x sub_h x sub_w
    subs = subs.view(batch, channels, stride, stride, sub_h, sub_w)
    return subs.permute(0, 1, 2, 4, 3, 5).reshape(batch, channels, stride * sub_h, stride * sub_w)


def pd_up(x: torch.Tensor, stride: int, pad: int = 0) -> torch.Tensor:
    """The inverse of :func:`pd_down`: the padded sub-images cropped and woven back into one image."""
    batch, channels, height, width = x.shape
    sub_h, sub_w = height // stride, width // stride
    subs = x.view(batch, channels, stride, sub_h, stride, sub_w).permute(0, 1, 2, 4, 3, 5)
    subs = subs.reshape(batch, channels * stride * stride, sub_h, sub_w)
    if pad:
        subs = subs[..., pad:-pad, pad:-pad]
    return F.pixel_shuffle(subs, stride)


class APBSN(nn.Module):
    """DBSN behind asymmetric PD: ``forward`` in training mode is PD with ``pd_train`` + DBSN + inverse PD (what
    ``objective=apbsn`` scores against the noisy input itself); in eval mode it denoises: PD with ``pd_test``, then
    R3 (``r3_repeats`` passes of the network with a share ``r3_p`` of the input's pixels put back; 0 repeats
    returns the PD output). R3's random masks come from a generator seeded with ``r3_seed`` on every call, so an
    image denoises to the same output every time."""

    #: the network never sees the pixel it predicts (in training mode): objective=apbsn needs this
    blind_spot = True
    onnx_exportable = False
    onnx_refusal = (
        "its inference draws R3's random masks and reshapes by the image's size (PD), which torch.export cannot trace"
    )

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 128,
        num_modules: int = 9,
        pd_train: int = 5,
        pd_test: int = 2,
        pd_pad: int = 2,
        r3_repeats: int = 8,
        r3_p: float = 0.16,
        r3_seed: int = 0,
    ) -> None:
        super().__init__()
        for key, value in (("pd_train", pd_train), ("pd_test", pd_test)):
            if value < 1:
                raise ValueError(f"model.net.{key}={value}: expected a stride >= 1")
        for key, value in (("pd_pad", pd_pad), ("r3_repeats", r3_repeats)):
            if value < 0:
                raise ValueError(f"model.net.{key}={value}: expected >= 0")
        if not 0.0 <= r3_p <= 1.0:
            raise ValueError(f"model.net.r3_p={r3_p}: expected a probability in [0, 1]")
        self.pd_train, self.pd_test, self.pd_pad = pd_train, pd_test, pd_pad
        self.r3_repeats, self.r3_p, self.r3_seed = r3_repeats, r3_p, r3_seed
        self.size_multiple = pd_test
        self.bsn = DBSN(in_channels, in_channels, channels, num_modules)

    def through_pd(self, x: torch.Tensor, stride: int) -> torch.Tensor:
        """PD with ``stride``, the blind-spot network, inverse PD; any size (reflect-padded to the stride's
        multiple and cropped back)."""
        height, width = x.shape[-2:]
        extra_h, extra_w = -height % stride, -width % stride
        if extra_h or extra_w:
            x = F.pad(x, (0, extra_w, 0, extra_h), mode="reflect" if min(height, width) > 1 else "replicate")
        if stride > 1:
            out = pd_up(self.bsn(pd_down(x, stride, self.pd_pad)), stride, self.pd_pad)
        else:
            pad = self.pd_pad
            out = self.bsn(F.pad(x, (pad, pad, pad, pad)))
            out = out[..., pad : out.shape[-2] - pad, pad : out.shape[-1] - pad]
        return out[..., :height, :width]

    def refine(self, noisy: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """Random-replacing refinement: the mean over ``r3_repeats`` passes of the network on ``first`` with a
        random share ``r3_p`` of its pixels replaced by ``noisy``'s (reflect-padded by ``pd_pad``)."""
        meta = noisy.device.type == "meta"  # denoise-models counts on the meta device, which has no generator
        generator = None if meta else torch.Generator(device=noisy.device).manual_seed(self.r3_seed)
        pad = self.pd_pad
        mode = "reflect" if min(noisy.shape[-2:]) > pad else "replicate"
        total = torch.zeros_like(noisy, dtype=torch.float32)
        for _ in range(self.r3_repeats):
            replaced = torch.rand(noisy.shape, generator=generator, device=noisy.device) < self.r3_p
            mixed = torch.where(replaced, noisy, first.detach())
            out = self.bsn(F.pad(mixed, (pad, pad, pad, pad), mode=mode) if pad else mixed)
            total += (out[..., pad : out.shape[-2] - pad, pad : out.shape[-1] - pad] if pad else out).float()
        return (total / self.r3_repeats).to(noisy.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.through_pd(x, self.pd_train)
        first = self.through_pd(x, self.pd_test)
        return self.refine(x, first) if self.r3_repeats else first
