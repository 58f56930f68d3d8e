"""The training objectives (denoise/training/objectives.py) on inputs whose losses are computed by hand: what each one
shows the network, what it compares, and which pixels count."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from denoise.training.objectives import (
    NEIGHBOUR_PAIRS,
    Neighbor2Neighbor,
    Noise2Noise,
    Noise2Void,
    Supervised,
    blind_spot_mask,
    hide,
    neighbour_choice,
    subsample,
)


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(a, b)


def test_supervised_and_noise2noise_compare_with_their_own_targets() -> None:
    noisy = torch.tensor([[[[0.2, 0.4], [0.6, 0.8]]]])
    clean = torch.tensor([[[[0.1, 0.4], [0.5, 1.0]]]])
    second = torch.tensor([[[[0.3, 0.1], [0.6, 0.6]]]])
    batch = {"noisy": noisy, "clean": clean, "noisy2": second}

    def double(x: torch.Tensor) -> torch.Tensor:
        return 2 * x

    # (0.4-0.1)² + (0.8-0.4)² + (1.2-0.5)² + (1.6-1.0)² = 0.09 + 0.16 + 0.49 + 0.36 = 1.10, over 4 pixels
    assert float(Supervised()(double, batch, mse)) == pytest.approx(1.10 / 4)
    # (0.4-0.3)² + (0.8-0.1)² + (1.2-0.6)² + (1.6-0.6)² = 0.01 + 0.49 + 0.36 + 1.00 = 1.86
    assert float(Noise2Noise()(double, batch, mse)) == pytest.approx(1.86 / 4)
    assert Supervised.needs == {"noisy", "clean"} and Noise2Noise.needs == {"noisy", "noisy2"}


def test_the_subsampler_takes_two_adjacent_pixels_of_each_2x2_cell() -> None:
    height, width = 8, 10
    image = torch.arange(2 * 3 * height * width, dtype=torch.float32).view(2, 3, height, width)
    choice = neighbour_choice(2, height, width, torch.Generator().manual_seed(0))
    assert choice.shape == (2, height // 2, width // 2, 2)
    first, second = subsample(image, choice, 0), subsample(image, choice, 1)
    assert first.shape == second.shape == (2, 3, height // 2, width // 2)
    for b in range(2):
        for channel in range(3):
            for i in range(height // 2):
                for j in range(width // 2):
                    positions = []
                    for half in (first, second):
                        flat = int(half[b, channel, i, j]) - (b * 3 + channel) * height * width
                        assert 0 <= flat < height * width  # from this image and channel
                        positions.append(divmod(flat, width))
                    (r1, c1), (r2, c2) = positions
                    assert (r1 // 2, c1 // 2) == (r2 // 2, c2 // 2) == (i, j)  # the same 2x2 cell
                    assert abs(r1 - r2) + abs(c1 - c2) == 1  # two different, adjacent pixels
    # every ordered neighbour pair is drawn, about equally often
    many = neighbour_choice(1, 200, 200, torch.Generator().manual_seed(1)).reshape(-1, 2)
    counts = torch.tensor([int(((many == torch.tensor(p)).all(1)).sum()) for p in NEIGHBOUR_PAIRS])
    assert int(counts.sum()) == 100 * 100 and counts.min() > 0.9 * 10000 / 8 and counts.max() < 1.1 * 10000 / 8


def test_neighbor2neighbor_loss_on_one_cell_by_hand() -> None:
    """One 2x2 cell [[1, 2], [3, 4]] and f(x) = k x: with pixels i -> g1 and j -> g2,
    reconstruction (k v_i - v_j)², regularizer (k v_i - (k v_i - k v_j) - v_j)² = ((k - 1) v_j)²."""
    image = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    values = image.flatten()
    scale = torch.tensor(2.0, requires_grad=True)

    def net(x: torch.Tensor) -> torch.Tensor:
        return scale * x

    for seed in range(6):
        i, j = neighbour_choice(1, 2, 2, torch.Generator().manual_seed(seed))[0, 0, 0].tolist()
        v_i, v_j = float(values[i]), float(values[j])
        reconstruction, regularizer = (2 * v_i - v_j) ** 2, v_j**2
        for objective, progress, weight in (
            (Neighbor2Neighbor(gamma=2.0, ramp=True), 0.5, 1.0),  # ramped: half of gamma half-way
            (Neighbor2Neighbor(gamma=2.0, ramp=True), 0.0, 0.0),
            (Neighbor2Neighbor(gamma=2.0, ramp=False), 0.0, 2.0),
        ):
            scale.grad = None
            loss = objective(net, {"noisy": image}, mse, progress, torch.Generator().manual_seed(seed))
            assert float(loss.detach()) == pytest.approx(reconstruction + weight * regularizer)
            loss.backward()
            # f(y) of the regularizer is taken without gradient: d/dk = 2(k v_i - v_j) v_i + w 2 (k - 1) v_j v_i
            expected = 2 * (2 * v_i - v_j) * v_i + weight * 2 * v_j * v_i
            assert float(scale.grad) == pytest.approx(expected)
    with pytest.raises(ValueError, match="gamma"):
        Neighbor2Neighbor(gamma=-1)


def test_blind_spot_never_shows_a_masked_pixel_and_scores_only_masked_pixels() -> None:
    torch.manual_seed(0)
    height, width, ratio = 24, 20, 0.05
    noisy = torch.randperm(2 * 3 * height * width).float().view(2, 3, height, width) / 1000  # all values distinct
    for replacement in ("median", "neighbor"):
        output = torch.zeros_like(noisy, requires_grad=True)
        seen: list[torch.Tensor] = []

        def net(x: torch.Tensor, output: torch.Tensor = output, seen: list = seen) -> torch.Tensor:
            seen.append(x.detach().clone())
            return output + 0 * x

        objective = Noise2Void(mask_ratio=ratio, replacement=replacement)
        loss = objective(net, {"noisy": noisy}, mse, 1.0, torch.Generator().manual_seed(3))
        shown = seen[0]
        changed = (shown != noisy).any(dim=1)  # B x H x W: the hidden positions
        count = round(ratio * height * width)
        assert changed.sum(dim=(1, 2)).tolist() == [count, count]
        assert ((shown != noisy).all(dim=1) == changed).all()  # hidden in every channel
        for b, row, col in changed.nonzero().tolist():
            window = noisy[b, :, max(0, row - 2) : row + 3, max(0, col - 2) : col + 3]
            own = noisy[b, :, row, col]
            for channel in range(3):
                value = shown[b, channel, row, col]
                assert value != own[channel]  # never the pixel's own value
                assert (window[channel] == value).any()  # taken from its 5x5 neighbourhood
        loss.backward()
        counted = (output.grad != 0).any(dim=1)
        assert torch.equal(counted, changed)  # only the hidden pixels count
        hidden = changed[:, None].expand_as(noisy)
        assert float(loss.detach()) == pytest.approx(float((noisy[hidden] ** 2).mean()))  # against their noisy values


def test_median_replacement_is_the_median_of_the_24_neighbours() -> None:
    noisy = torch.randperm(49).float().view(1, 1, 7, 7)
    mask = torch.zeros(1, 1, 7, 7, dtype=torch.bool)
    mask[0, 0, 3, 3] = True
    shown = hide(noisy, mask, "median")
    neighbours = torch.cat([noisy[0, 0, 1:6, 1:6].flatten()[:12], noisy[0, 0, 1:6, 1:6].flatten()[13:]])
    assert float(shown[0, 0, 3, 3]) == float(neighbours.sort().values[11])  # torch's lower median of 24
    assert torch.equal(shown[~mask], noisy[~mask])
    assert blind_spot_mask((3, 1, 10, 10), 0.001).sum(dim=(1, 2, 3)).tolist() == [1, 1, 1]  # at least one
    with pytest.raises(ValueError, match="mask_ratio"):
        Noise2Void(mask_ratio=0)
    with pytest.raises(ValueError, match="replacement"):
        Noise2Void(replacement="mean")


def test_an_objective_by_its_spec_only() -> None:
    """Every objective of conf/objective/ builds from its spec; None (a checkpoint from before objectives) is
    supervised; a name is refused with the config group that chooses one."""
    from omegaconf import OmegaConf

    from denoise.config.specs import build, objective_spec
    from tests.helpers import CONF

    built = {}
    for path in sorted((CONF / "objective").glob("*.yaml")):
        spec = objective_spec(OmegaConf.to_container(OmegaConf.load(path)))
        built[path.stem] = build(spec, what="model.objective", kind="objective")
    assert {name: obj.name for name, obj in built.items()} == {name: name for name in built}
    assert sorted(built) == ["apbsn", "neighbor2neighbor", "noise2noise", "noise2void", "supervised"]
    assert objective_spec(None) == {"_target_": "denoise.training.objectives.Supervised"}
    spec = {"_target_": "denoise.training.objectives.Noise2Void", "mask_ratio": 0.1}
    assert build(objective_spec(spec)).mask_ratio == 0.1
    with pytest.raises(ValueError, match=r"model.objective='noise2noise' is not an objective: choose one with"):
        objective_spec("noise2noise")
