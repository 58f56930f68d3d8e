"""The package grouped by role (training/, evaluation/, inference/, config/): what names the old module paths keeps
working. A checkpoint saved before the move (its hyperparameters name ``denoise.optim.cosine_with_warmup`` and
``denoise.objectives.Supervised``) still loads and rebuilds its module; a config of an earlier version that names
``denoise.module.DenoiseModule`` or ``denoise.progress.ProgressBar`` still instantiates; and nothing else moves."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from denoise.checkpoint import load_network
from denoise.config.specs import ALIASES, MOVED_MODULES, REGISTRY, build, current_target
from denoise.tasks.compose import instantiate
from tests.helpers import SHARED_DATA

FIXTURE = SHARED_DATA.parent / "fixtures" / "ckpt_f334cb6_rednet.ckpt"


def test_every_old_target_of_the_registry_has_its_new_one() -> None:
    for kind in ("scheduler", "objective", "filter"):
        for target in REGISTRY[kind]:
            module, _, name = target.rpartition(".")
            old = next(o for o, n in MOVED_MODULES.items() if n == module)
            assert ALIASES[f"{old}.{name}"] == target
    assert current_target("denoise.models.rednet.REDNet") == "denoise.models.rednet.REDNet"  # not moved
    assert current_target("torch.optim.Adam") == "torch.optim.Adam"
    built = build({"_target_": "denoise.objectives.Supervised"}, kind="objective")
    assert type(built).__module__ == "denoise.training.objectives"


@pytest.mark.skipif(not FIXTURE.is_file(), reason="the checkpoint fixture is not beside this checkout")
def test_a_checkpoint_saved_before_the_move_loads_and_rebuilds_its_module() -> None:
    ckpt = torch.load(FIXTURE, weights_only=True)
    hparams = ckpt["hyper_parameters"]
    assert hparams["scheduler"]["_target_"] == "denoise.optim.cosine_with_warmup"  # the old paths, as stored
    assert hparams["objective"]["_target_"] == "denoise.objectives.Supervised"
    net, spec = load_network(FIXTURE)
    assert spec["_target_"] == "denoise.models.rednet.REDNet" and sum(p.numel() for p in net.parameters()) > 0
    from denoise.training.module import DenoiseModule

    module = DenoiseModule(**hparams)  # what Lightning's load_from_checkpoint does
    module.load_state_dict(ckpt["state_dict"])
    assert type(module.objective).__name__ == "Supervised"
    assert hparams["loss"] == "l1"  # stored by name before losses were specs: the same loss, now by its spec
    assert module.hparams["loss"] == {"_target_": "torch.nn.L1Loss"} and type(module.loss_fn) is torch.nn.L1Loss
    scheduler = build(hparams["scheduler"], kind="scheduler")  # _partial_: the schedule waiting for its optimizer
    assert callable(scheduler)


def test_a_config_of_an_earlier_version_still_instantiates(tmp_path: Path) -> None:
    old = OmegaConf.create({"bar": {"_target_": "denoise.progress.ProgressBar", "min_interval": 1.0},
                            "plain": {"_target_": "denoise.training.progress.PlainProgress"}})  # fmt: skip
    bar = instantiate(old.bar)
    assert type(bar).__module__ == "denoise.training.progress" and bar.min_interval == 1.0
    assert old.bar._target_ == "denoise.progress.ProgressBar"  # the caller's config is left as it was
    assert type(instantiate(old.plain)).__name__ == "PlainProgress"


@pytest.mark.slow
@pytest.mark.skipif(not FIXTURE.is_file(), reason="the checkpoint fixture is not beside this checkout")
def test_evaluate_py_scores_the_old_checkpoint_and_train_py_takes_an_old_module_path(tmp_path: Path) -> None:
    from tests.fixtures.small import tiny_images
    from tests.helpers import TINY, read_results, run_cli

    data = tiny_images(tmp_path / "images")
    result = run_cli("evaluate.py", f"ckpt_path={FIXTURE}", f"data.test_dirs=[{data}]", run_dir=tmp_path / "e")
    assert result.returncode == 0, result.stderr[-2000:]
    scored = read_results(tmp_path / "e")  # one short epoch of training at f334cb6: scored, not yet good
    assert scored["method"] == "REDNet" and 10 < scored["test/psnr"] < 60 and scored["ckpt_path"] == str(FIXTURE)
    result = run_cli("train.py", *TINY, "logger=none", "model._target_=denoise.module.DenoiseModule",
                     run_dir=tmp_path / "t")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
