"""hparams_search=optuna: Hydra's Optuna sweeper (TPE, SQLite study) over lr, batch size, loss and width."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from denoise.tasks import model_specs
from denoise.training.search import width_choices, width_key
from tests.helpers import CONF, ROOT, read_results


def test_width_choices_halve_and_double_under_each_architecture_name() -> None:
    assert width_choices(32) == [16, 32, 64]
    assert width_choices(1.0) == [0.5, 1.0, 2.0]
    assert width_choices([160, 256, 256]) == ["[80,128,128]", "[160,256,256]", "[320,512,512]"]
    keys = {name: width_key(spec) for name, spec in model_specs().items()}
    assert keys == {
        "autoencoder": "channels",
        "bsn": "channels",
        "bsn_small": "channels",
        "dncnn": "channels",
        "drunet": "widths",
        "drunet_small": "widths",
        "ffdnet": "channels",
        "mwcnn": "widths",
        "nafnet": "width",
        "nafnet_small": "width",
        "pridnet": "width",
        "rednet": "channels",
        "rednet_small": "channels",
        "restormer": "dim",
        "restormer_small": "dim",
        "swinir": "embed_dim",
        "swinir_small": "embed_dim",
    }


@pytest.mark.slow
def test_three_trials_then_resume_the_study(tmp_path: Path) -> None:
    import optuna

    logs = tmp_path / "logs"
    common = [
        "hparams_search=optuna",
        "model.net.depth=10",
        "data.patch_size=32",
        "data.samples_per_epoch=32",  # at least one batch at the largest batch size
        "trainer.max_epochs=1",
        "logger=none",
        "~callbacks.rich_progress_bar",
        "~callbacks.model_summary",
        f"paths.log_dir={logs}",
    ]

    def sweep(n_trials: int) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "train.py", "-m", *common, f"hydra.sweeper.n_trials={n_trials}"]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)

    first = sweep(3)
    assert first.returncode == 0, first.stderr[-3000:]
    storage = f"sqlite:///{logs / 'optuna' / 'train-rednet_small-synthetic.db'}"
    study = optuna.load_study(study_name="train-rednet_small-synthetic", storage=storage)
    trials = study.trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE

    (sweep_dir,) = list((logs / "train" / "multiruns").iterdir())
    for number, trial in enumerate(trials):
        assert set(trial.params) == {"model.optimizer.lr", "data.batch_size", "model/loss", "model.net.channels"}
        assert 1e-4 <= trial.params["model.optimizer.lr"] <= 3e-3
        assert trial.params["data.batch_size"] in (8, 16, 32) and trial.params["model.net.channels"] in (
            8,
            16,
            32,
        )  # half, same, twice 16
        assert trial.params["model/loss"] in ("l1", "l2", "charbonnier", "psnr")
        # each trial's value is the best val PSNR that its run reported
        assert trial.value == pytest.approx(read_results(sweep_dir / str(number))["val/psnr"])
        config = yaml.safe_load((sweep_dir / str(number) / ".hydra" / "config.yaml").read_text())
        assert config["data"]["batch_size"] == trial.params["data.batch_size"]
        assert config["model"]["net"]["channels"] == trial.params["model.net.channels"]
        chosen = yaml.safe_load((CONF / "model" / "loss" / f"{trial.params['model/loss']}.yaml").read_text())
        assert config["model"]["loss"] == chosen  # the loss the trial picked is the one its run trained with
    summary = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert summary["best_value"] == pytest.approx(max(t.value for t in trials))

    # the same command again continues the same study
    again = sweep(1)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(optuna.load_study(study_name="train-rednet_small-synthetic", storage=storage).trials) == 4
