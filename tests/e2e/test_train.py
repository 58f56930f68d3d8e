"""End to end: train.py and evaluate.py on tiny runs, every logger, resume, DDP on CPU, bad input."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import MissingConfigException
from omegaconf import DictConfig, read_write

from denoise.checkpoint import CheckpointError, load_network
from denoise.data.datamodule import InputCheckError
from denoise.tasks import evaluate, train
from tests.fixtures.small import PickleExploit, tiny_images
from tests.helpers import ROOT, TINY, compose_cfg, read_results, run_cli, with_values

TEST_KEYS = ("test/psnr", "test/ssim", "test/psnr_noisy", "test/ssim_noisy")


@pytest.mark.parametrize("logger", ["wandb", "csv", "tensorboard", "none"])
def test_fast_dev_run_with_each_logger(logger: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(compose_cfg("train", [*TINY, f"logger={logger}", "debug=fast_dev_run"], run))
    results = read_results(run)
    assert all(np.isfinite(results[k]) for k in TEST_KEYS)
    assert results["global_step"] == 1
    assert results["test/psnr_noisy"] == pytest.approx(20.6, abs=0.6)  # sigma 25 on the embedded test photos


def test_run_and_multirun_directory_layout(tmp_path: Path) -> None:
    """Default layout: <log_dir>/<task>/runs/<timestamp>/ and <log_dir>/<task>/multiruns/<timestamp>/<n>/."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    logs = tmp_path / "logs"
    common = [*TINY, "logger=none", "debug=fast_dev_run", f"paths.log_dir={logs}"]
    single = subprocess.run(
        [sys.executable, "train.py", *common], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert single.returncode == 0, single.stderr[-2000:]
    (run,) = list((logs / "debug" / "runs").iterdir())
    assert (run / "results.json").is_file() and (run / ".hydra" / "config.yaml").is_file()

    multi = subprocess.run(
        [sys.executable, "train.py", "-m", *common, "noise.sigma=15,50"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert multi.returncode == 0, multi.stderr[-2000:]
    (sweep,) = list((logs / "debug" / "multiruns").iterdir())
    noisy = {n: read_results(sweep / n)["test/psnr_noisy"] for n in ("0", "1")}
    assert noisy["0"] > noisy["1"] + 8  # sigma 15 vs sigma 50: the overrides reached the jobs


def _tensorboard_tags(folder: Path) -> tuple[set[str], set[str]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return set(events.Tags()["scalars"]), set(events.Tags()["images"])


@pytest.mark.parametrize("logger", ["wandb", "csv", "tensorboard", "none"])
def test_each_logger(logger: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    value = train(compose_cfg("train", [*TINY, f"logger={logger}", "debug=limit"], run))
    results = read_results(run)
    assert value == pytest.approx(results["val/psnr"]) and results["optimized_metric"] == "val/psnr"
    assert all(np.isfinite(results[k]) for k in TEST_KEYS) and results["world_size"] == 1
    assert results["ckpt_path"] == str(run / "checkpoints" / "best.ckpt") and Path(results["ckpt_path"]).is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    if logger == "csv":  # the trail: the code's version and commit in results.json and in the checkpoint
        import denoise
        from denoise.provenance import provenance

        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        assert results["denoise_version"] == denoise.__version__ and results["git_commit"] == (head or None)
        stored = torch.load(results["ckpt_path"], weights_only=True)["denoise"]
        assert stored == provenance() and isinstance(results["git_dirty"], bool | None)
    if logger == "wandb":
        offline = list((run / "wandb").glob("offline-run-*"))
        assert len(offline) == 1 and list(offline[0].glob("run-*.wandb"))
        grids = list(offline[0].glob("files/media/images/val/examples_*.png"))
        assert grids, "the validation image grid reached W&B"
        from PIL import Image

        grid = np.asarray(Image.open(grids[0]))
        assert grid.shape[1] == 3 * grid.shape[0] or grid.shape[1] == 3 * min(256, 400)  # noisy | denoised | clean
        assert grid.max() > 100  # a real picture, not a black frame
    elif logger == "csv":
        with (run / "csv" / "metrics.csv").open() as handle:
            columns = set(next(csv.reader(handle)))
        assert {"val/psnr", "val/psnr_noisy", "val/ssim", "train/loss", "test/psnr"} <= columns
    elif logger == "tensorboard":
        scalars, images = _tensorboard_tags(run / "tensorboard")
        assert {"val/psnr", "train/loss"} <= scalars
        assert "val/examples/coffee.png" in images
    else:
        assert not (run / "wandb").exists() and not (run / "csv").exists()


def test_checkpoint_is_plain_data_and_rebuilds_the_network(cfg_train: DictConfig, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(cfg_train)
    ckpt_path = run / "checkpoints" / "last.ckpt"
    ckpt = torch.load(ckpt_path, weights_only=True)  # no pickled objects anywhere
    assert ckpt["hyper_parameters"]["net"]["_target_"] == "denoise.models.rednet.REDNet"
    net, spec = load_network(ckpt_path)
    assert spec["channels"] == 8 and spec["depth"] == 10
    state = {k[4:]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())


def test_resume_continues_the_run_of_its_checkpoint(tmp_path: Path) -> None:
    """An explicit checkpoint inside a run, and ckpt_path=last, continue that run in its own directory (the new
    launch keeps only its config); a checkpoint from elsewhere starts a new run directory from it."""
    import shutil
    import warnings

    logs = tmp_path / "logs"
    first = logs / "train" / "runs" / "2026-01-01_00-00-00_000000"
    (first / ".hydra").mkdir(parents=True)  # what @hydra.main writes into every run directory
    train(compose_cfg("train", [*TINY, "logger=none"], first, log_dir=logs))
    assert read_results(first)["global_step"] == 2  # 8 samples / batch 4, one epoch

    relaunch = logs / "train" / "runs" / "2026-01-01_00-00-01_000000"
    overrides = [*TINY, "logger=none", f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=2"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(compose_cfg("train", overrides, relaunch, log_dir=logs))
    assert read_results(first)["global_step"] == 4 and read_results(first)["epochs"] == 2
    assert not (relaunch / "results.json").exists() and not (relaunch / "checkpoints").exists()
    assert not [w for w in caught if "dirpath has changed" in str(w.message)]  # the callbacks' state carries on

    # ckpt_path=last: the newest last.ckpt of the task, i.e. the same run again
    latest = logs / "train" / "runs" / "2026-01-01_00-00-02_000000"
    overrides = [*TINY, "logger=none", "ckpt_path=last", "trainer.max_epochs=3"]
    train(compose_cfg("train", overrides, latest, log_dir=logs))
    assert read_results(first)["global_step"] == 6 and read_results(first)["run_dir"] == str(first)
    # every finished stage's results are kept beside the newest (never replaced)
    kept = [json.loads((first / f"results.{n}.json").read_text())["global_step"] for n in (1, 2)]
    assert kept == [2, 4] and not (first / "results.3.json").exists()

    # a checkpoint that is not in a run directory: a new run, started from it
    loose = shutil.copy(first / "checkpoints" / "last.ckpt", tmp_path / "shared.ckpt")
    fresh = tmp_path / "fresh"
    train(compose_cfg("train", [*TINY, "logger=none", f"ckpt_path={loose}", "trainer.max_epochs=4"], fresh))
    assert read_results(fresh)["global_step"] == 8 and read_results(first)["global_step"] == 6


def test_evaluate_cli_reproduces_the_training_test_score(tmp_path: Path) -> None:
    data = tiny_images(tmp_path / "test_images")
    run = tmp_path / "train_run"
    train(compose_cfg("train", [*TINY, "logger=none", f"data.test_dirs=[{data}]"], run))
    trained = read_results(run)

    eval_dir = tmp_path / "eval_run"
    result = run_cli("evaluate.py", f"ckpt_path={trained['ckpt_path']}", f"data.test_dirs=[{data}]", run_dir=eval_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = read_results(eval_dir)
    for key in TEST_KEYS:
        assert evaluated[key] == pytest.approx(trained[key], abs=1e-4), key
    assert evaluated["images"] == 3
    rows = list(csv.DictReader((eval_dir / "results.csv").open()))
    assert [r["method"] for r in rows] == ["noisy input", "REDNet"]
    assert float(rows[1]["psnr_gain"]) == pytest.approx(trained["test/psnr"] - trained["test/psnr_noisy"], abs=1e-3)
    assert "| noisy input | input |" in (eval_dir / "results.md").read_text()
    per_image = list(csv.DictReader((eval_dir / "per_image.csv").open()))
    assert [r["image"] for r in per_image] == ["img0.png", "img1.png", "img2.png"]
    assert np.mean([float(r["psnr"]) for r in per_image]) == pytest.approx(evaluated["test/psnr"], abs=1e-6)
    assert "REDNet" in result.stdout


def test_ddp_sim_trains_and_tests_on_two_cpu_processes(tmp_path: Path) -> None:
    """2 gloo processes; the test split (3 images over 2 ranks) is scored once per image, no duplicates."""
    data = tiny_images(tmp_path / "test_images")
    run = tmp_path / "ddp_run"
    overrides = [o for o in TINY if not o.startswith("trainer.accelerator")]
    result = run_cli("train.py", *overrides, "logger=none", "trainer=ddp_sim", f"data.test_dirs=[{data}]", run_dir=run)
    assert result.returncode == 0, result.stderr[-3000:]
    results = read_results(run)
    assert results["world_size"] == 2
    assert results["global_step"] == 1  # 8 samples, batch 4 per device, 2 devices
    # the same checkpoint scored by one process gives the same mean over the same 3 images
    one_process = evaluate(
        compose_cfg("evaluate", [f"ckpt_path={results['ckpt_path']}", f"data.test_dirs=[{data}]"], tmp_path / "eval")
    )
    for key in TEST_KEYS:
        assert results[key] == pytest.approx(one_process[key], abs=1e-3), key


def test_bad_input_errors_name_the_path_or_key(tmp_path: Path) -> None:
    """Found by the input check before training (denoise/data/datamodule.py), each naming its split and file."""
    base = [*TINY, "logger=none"]
    with pytest.raises(InputCheckError, match=r"\[test\] data\.test_dirs\[0\]: folder .*nowhere does not exist"):
        train(compose_cfg("train", [*base, f"data.test_dirs=[{tmp_path / 'nowhere'}]"], tmp_path / "a"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputCheckError, match=r"\[train\] data\.train_dirs\[0\]: folder .*empty holds no images"):
        train(compose_cfg("train", [*base, f"data.train_dirs=[{tmp_path / 'empty'}]"], tmp_path / "b"))
    broken = tmp_path / "broken"
    tiny_images(broken, count=1)
    (broken / "zz.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    with pytest.raises(InputCheckError, match=r"\[val\] cannot read the header of image file .*zz\.png: it is corrupt"):
        train(compose_cfg("train", [*base, f"data.val_dirs=[{broken}]"], tmp_path / "c"))
    with pytest.raises(MissingConfigException, match=r"(?s)Could not find 'noise/speckle'.*options.*\tgaussian"):
        train(compose_cfg("train", [*base, "noise=speckle"], tmp_path / "d"))
    with pytest.raises(ValueError, match=r"model\.loss='l2' \(a string\): expected a loss's spec .*model/loss=l1"):
        train(compose_cfg("train", [*base, "model.loss=l2"], tmp_path / "e"))  # the spelling of earlier versions


def test_bad_input_reaches_the_terminal(tmp_path: Path) -> None:
    result = run_cli("train.py", *TINY, "logger=none", "data.test_dirs=[/no/such/folder]", run_dir=tmp_path / "run")
    assert result.returncode != 0
    assert "data.test_dirs[0]: folder /no/such/folder does not exist" in result.stderr


def test_a_missing_standard_set_names_the_command_that_fetches_it(tmp_path: Path) -> None:
    """A paper recipe on an empty data folder: every missing set in one message, each with its denoise-data get."""
    result = run_cli("train.py", "experiment=dncnn_s_gray25", "trainer=cpu", "logger=none",
                     f"paths.data_dir={tmp_path / 'data'}", run_dir=tmp_path / "run")  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    for key, name in (("train_dirs", "train400"), ("val_dirs", "set12"), ("test_dirs", "bsd68")):
        assert (f"data.{key}[0]: folder {tmp_path / 'data' / name} does not exist (expected a folder of images); "
                f"fetch it with `denoise-data get {name} --data-dir {tmp_path / 'data'}`") in result.stderr  # fmt: skip


def test_a_missing_dataset_root_is_one_message_with_the_layout(tmp_path: Path) -> None:
    """The design card's own first line without data.root: one message naming the key, the layout SIDD expects
    and where it is published, exit 2, no traceback; a refused run writes nothing (no run directory, no log)."""
    run = tmp_path / "run"
    result = run_cli("train.py", "model=pridnet", "data=sidd", "logger=none", run_dir=run)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith("error: train.py needs data.root: give data.root=...\nExpected a SIDD sRGB")
    assert "SIDD is published at" in result.stderr and "Traceback" not in result.stderr
    assert "`denoise-data get sidd_medium` says where to download it and where to put it." in result.stderr
    assert "MissingMandatoryValue" not in result.stderr
    assert not run.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without a GPU")
def test_trainer_gpu_without_a_gpu_says_so_at_once(tmp_path: Path) -> None:
    """Lightning's MisconfigurationException came after the data was set up; now the first check."""
    overrides = [o for o in TINY if not o.startswith("trainer.accelerator")] + ["logger=none", "trainer=gpu"]
    with pytest.raises(ValueError, match=r"trainer.accelerator=gpu with trainer.devices=1 needs 1 CUDA GPU\(s\); "
                                         r"this machine has no CUDA GPU .* Use trainer=cpu"):  # fmt: skip
        train(compose_cfg("train", overrides, tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_malicious_checkpoint_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"net": PickleExploit(marker)}}, evil)
    with pytest.raises(CheckpointError, match=r"evil\.ckpt was refused: it holds pickled Python objects") as refused:
        evaluate(compose_cfg("evaluate", [f"ckpt_path={evil}"], tmp_path / "eval"))
    assert "weights_only` set to `False" not in str(refused.value)  # torch's advice is not for untrusted files
    assert "weights_only=False" not in str(refused.value) and "it names getattr" in str(refused.value)
    with pytest.raises(CheckpointError, match="refused"):
        train(compose_cfg("train", [*TINY, "logger=none", f"ckpt_path={evil}"], tmp_path / "train"))
    assert not marker.exists()


def test_checkpoint_naming_a_forbidden_target_is_refused(tmp_path: Path) -> None:
    crafted = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"net": {"_target_": "os.system", "command": "true"}}}, crafted)
    with pytest.raises(ValueError, match=r"model\.net\._target_='os\.system' is not allowed"):
        load_network(crafted)


def test_plain_state_dict_needs_an_architecture(tmp_path: Path) -> None:
    from denoise.models.rednet import REDNet

    path = tmp_path / "weights.pt"
    torch.save(REDNet(10, 8, 3).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"plain state dict .* model=<arch>"):
        load_network(path)
    net, _ = load_network(path, {"_target_": "denoise.models.rednet.REDNet", "depth": 10, "channels": 8})
    with pytest.raises(CheckpointError, match=r"does not fit denoise\.models\.rednet\.REDNet"):
        load_network(path, {"_target_": "denoise.models.rednet.REDNet", "depth": 20, "channels": 8})
    json.dumps({"ok": True})
    assert sum(p.numel() for p in net.parameters()) > 0


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import denoise.training.module

    real_build = denoise.training.module.build

    def poisoned(spec, *args, **kwargs):
        built = real_build(spec, *args, **kwargs)
        if kwargs.get("kind") != "loss":
            return built
        loss_fn, calls = built, []

        def loss(pred, target):
            if torch.is_grad_enabled():  # training steps only, not validation
                calls.append(1)
                if len(calls) == 3:  # global step 2: the first step of the second epoch
                    return loss_fn(pred, target) * float("nan")
            return loss_fn(pred, target)

        return loss

    monkeypatch.setattr(denoise.training.module, "build", poisoned)
    run = tmp_path / "run"
    with pytest.raises(FloatingPointError, match=r"loss is not finite \(nan\) at global step 2 \(epoch 1, batch 0\)"):
        train(compose_cfg("train", [*TINY, "logger=none", "trainer.max_epochs=3"], run))
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2 and last["epoch"] == 0  # saved at the end of the good epoch
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_ema_weights_validate_test_and_fill_the_checkpoint(tmp_path: Path) -> None:
    """callbacks=[default,ema]: the checkpoint's state_dict holds the averaged weights (the raw ones beside them),
    and scoring that state_dict on the validation image reproduces the val/psnr that chose it, so validation ran
    with the EMA weights; the raw weights score differently."""
    import skimage.data

    run = tmp_path / "run"
    overrides = [*TINY, "logger=none", "callbacks=[default,ema]", "callbacks.ema.decay=0.5", "trainer.max_epochs=2"]
    overrides = [o for o in overrides if not o.startswith("~callbacks")] + ["~callbacks.rich_progress_bar"]
    train(compose_cfg("train", overrides, run))
    results = read_results(run)
    ckpt = torch.load(results["ckpt_path"], weights_only=True)
    assert {"current_model_state", "averaging_state"} <= set(ckpt)
    raw, averaged = ckpt["current_model_state"], ckpt["state_dict"]
    assert any(not torch.equal(raw[k], averaged[k]) for k in averaged if k.startswith("net."))
    val_psnr = next(v for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint"))["best_model_score"]

    coffee = tmp_path / "val_image"
    coffee.mkdir()
    (coffee / "coffee.png").write_bytes((Path(skimage.data.__file__).parent / "coffee.png").read_bytes())
    scored = evaluate(
        compose_cfg("evaluate", [f"ckpt_path={results['ckpt_path']}", f"data.test_dirs=[{coffee}]"], tmp_path / "e")
    )
    assert scored["test/psnr"] == pytest.approx(float(val_psnr), abs=1e-4)
    raw_ckpt = tmp_path / "raw.ckpt"
    torch.save({"state_dict": raw, "hyper_parameters": ckpt["hyper_parameters"]}, raw_ckpt)
    raw_scored = evaluate(
        compose_cfg("evaluate", [f"ckpt_path={raw_ckpt}", f"data.test_dirs=[{coffee}]"], tmp_path / "r")
    )
    assert abs(raw_scored["test/psnr"] - scored["test/psnr"]) > 1e-3


def test_compile_and_channels_last_train_and_save_plain_names(tmp_path: Path) -> None:
    """model.compile=true compiles the network in place (no _orig_mod. in any saved name) and
    trainer.channels_last=true trains in NHWC; evaluate.py reproduces the run's test score from its checkpoint."""
    data = tiny_images(tmp_path / "test_images")
    import torch._dynamo.utils

    run = tmp_path / "run"
    overrides = [*TINY, "logger=none", "model.compile=true", "trainer.channels_last=true", f"data.test_dirs=[{data}]"]
    torch._dynamo.utils.counters.clear()
    train(compose_cfg("train", overrides, run))
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # the network really went through dynamo
    results = read_results(run)
    ckpt = torch.load(results["ckpt_path"], weights_only=True)
    assert ckpt["hyper_parameters"]["compile"] and ckpt["hyper_parameters"]["channels_last"]
    assert not [k for k in ckpt["state_dict"] if "_orig_mod" in k]
    scored = evaluate(
        compose_cfg("evaluate", [f"ckpt_path={results['ckpt_path']}", f"data.test_dirs=[{data}]"], tmp_path / "e")
    )
    assert scored["test/psnr"] == pytest.approx(results["test/psnr"], abs=1e-4)


def test_channels_last_gives_the_same_output() -> None:
    from denoise.training.module import DenoiseModule

    spec = {"_target_": "denoise.models.rednet.REDNet", "depth": 10, "channels": 8, "in_channels": 3}
    nhwc, nchw = DenoiseModule(spec, channels_last=True), DenoiseModule(spec)
    nchw.load_state_dict(nhwc.state_dict())
    weight = nhwc.net.encoder[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    x = torch.rand(2, 3, 37, 41)
    with torch.no_grad():
        assert (nhwc(x) - nchw(x)).abs().max().item() < 1e-5


def test_ddp_stops_every_rank_when_one_rank_loss_is_not_finite(tmp_path: Path) -> None:
    """Rank 1 alone goes NaN at step 2: both ranks stop with the error naming the step (no rank hangs in a
    collective), and the last good checkpoint, from the end of epoch 0, stays finite."""
    run = tmp_path / "run"
    overrides = [o for o in TINY if not o.startswith(("trainer.accelerator", "trainer.max_epochs"))]
    probe = "+callbacks.poison._target_=tests.fixtures.probes.PoisonWeights"
    result = run_cli(
        "train.py", *overrides, "logger=none", "trainer=ddp_sim", "trainer.max_epochs=3", "data.samples_per_epoch=16",
        probe, "+callbacks.poison.step=2", run_dir=run, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    assert "loss is not finite (nan) at global step 2 (epoch 1, batch 0)" in result.stderr
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2 and last["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_sync_batchnorm_on_cpu_is_refused_with_the_key(tmp_path: Path) -> None:
    """PyTorch's SyncBatchNorm runs on CUDA only: trainer.sync_batchnorm=true on CPU fails at once, naming the key,
    instead of deep inside the first DDP step."""
    cfg = compose_cfg("train", [*TINY, "logger=none", "trainer=ddp_sim", "trainer.sync_batchnorm=true"], tmp_path)
    with pytest.raises(ValueError, match=r"trainer\.sync_batchnorm=true needs GPUs"):
        train(cfg)


def test_a_time_budget_stops_training_and_ends_the_schedule(cfg_train: DictConfig, tmp_path: Path) -> None:
    """trainer.max_time: training stops when the budget is spent (validated, checkpointed, tested), and the cosine
    schedule has reached its floor by then although far fewer steps ran than the epochs allow."""
    run = tmp_path / "run"
    train(with_values(cfg_train, "trainer.max_epochs=1000", "trainer.max_time=00:00:00:04"))
    results = read_results(run)
    assert 0 < results["global_step"] < 1000 * 2 and np.isfinite(results["test/psnr"])
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    lr = last["optimizer_states"][0]["param_groups"][0]["lr"]
    assert lr == pytest.approx(2e-3 * 0.01, rel=0.05)  # min_lr_ratio of the configured rate


def test_a_time_budget_shorter_than_one_epoch_holds(cfg_train: DictConfig, tmp_path: Path) -> None:
    """An epoch of 40,000 samples (10,000 steps, minutes on this CPU) and a 5-second budget: the run stops inside
    its first epoch within a few seconds of the budget, validated, checkpointed and tested (Lightning's min_epochs
    used to keep it training to the end of the epoch, whatever the clock said)."""
    import time

    run = tmp_path / "run"
    start = time.perf_counter()
    train(
        with_values(cfg_train, "data.samples_per_epoch=40000", "trainer.max_epochs=2", "trainer.max_time=00:00:00:05")
    )
    fit_seconds = read_results(run)["fit_seconds"]
    assert fit_seconds < 5 + 4, f"training ran {fit_seconds:.1f} s past a 5-second budget"
    assert time.perf_counter() - start < 60
    results = read_results(run)
    assert 0 < results["global_step"] < 10_000 and results["epochs"] <= 1  # stopped inside the first epoch
    assert results["val/psnr"] is not None and np.isfinite(results["test/psnr"])
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == results["global_step"]
    assert Path(results["ckpt_path"]).is_file()


def test_last_ckpt_is_the_newest_state_when_validation_stops_improving(cfg_train: DictConfig, tmp_path: Path) -> None:
    """With learning rate 0 val/psnr never improves after epoch 0, so the best checkpoint stays at step 2; last.ckpt
    must still hold the final step (Lightning 2.6's save_last writes it only when the best one improves)."""
    run = tmp_path / "run"
    train(with_values(cfg_train, "trainer.max_epochs=4", "model.optimizer.lr=0"))
    results = read_results(run)
    assert torch.load(results["ckpt_path"], weights_only=True)["global_step"] == 2
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == results["global_step"] == 8 and last["epoch"] == 3
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [Path(results["ckpt_path"]).name, "last.ckpt"]


def test_wandb_records_the_best_score_the_size_and_the_checkpoint_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """W&B offline (no login here): the summary holds the best val/psnr (what the checkpoint and results.json
    name), the test scores and the parameter count; log_model=true stores the checkpoints as artifacts (Lightning
    refuses that offline); the composed config is logged once (not the module's hparams beside it); a sweep's
    runs share a group."""
    import wandb
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from denoise.tasks.compose import sweep_group
    from denoise.training.loggers import ResilientWandbLogger

    logged: list[tuple[str, list[str]]] = []
    original = wandb.sdk.wandb_run.Run.log_artifact

    def spy(run: object, artifact: object, *args: object, aliases: list[str] | None = None, **kwargs: object) -> object:
        logged.append((getattr(artifact, "type", ""), list(aliases or [])))
        return original(run, artifact, *args, aliases=aliases, **kwargs)

    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "log_artifact", spy)
    seen: dict[str, object] = {}
    record = ResilientWandbLogger.record_summary

    def keep(logger: ResilientWandbLogger, values: dict) -> None:  # the run as it ends (the task wrapper finishes it)
        record(logger, values)
        run = logger.experiment
        seen.update(summary=dict(run.summary), config=dict(run.config), group=run.group, offline=run.offline)

    monkeypatch.setattr(ResilientWandbLogger, "record_summary", keep)
    run = tmp_path / "run"
    cfg = compose_cfg("train", [*TINY, "logger=wandb", "logger.wandb.log_model=true", "trainer.max_epochs=3"], run)
    with read_write(HydraConfig.get()):  # as in a sweep (Optuna trials): grouped by the sweep
        HydraConfig.get().mode = RunMode.MULTIRUN
        HydraConfig.get().sweep.dir = str(tmp_path / "multiruns" / "2026-12-01_00-00-00")
    try:
        train(cfg)
        results = read_results(run)
        summary, config = seen["summary"], seen["config"]
        assert seen["offline"] is True
        assert summary["val/psnr"] == pytest.approx(results["val/psnr"])  # the best epoch's, as results.json
        network, _ = load_network(results["ckpt_path"])
        assert summary["parameters"] == results["parameters"] == sum(p.numel() for p in network.parameters())
        assert summary["test/psnr"] == pytest.approx(results["test/psnr"])
        assert summary["best_ckpt"] == results["ckpt_path"]
        assert {"model", "data", "trainer"} <= set(config)
        assert not {"net", "loss", "objective"} & set(config)  # the module's hparams are not logged again
        assert seen["group"] == sweep_group() == "train-2026-12-01_00-00-00"
        assert logged and all(kind == "model" for kind, _ in logged) and any("best" in a for _, a in logged)
    finally:
        wandb.finish()


def test_without_a_terminal_the_log_shows_progress_and_the_failure(tmp_path: Path) -> None:
    """A run without a TTY (SLURM, nohup: here a pipe) prints progress lines (epoch, step, loss, it/s, ETA) and
    each validation into the console and train.log; a failed run's train.log holds its exception."""
    run = tmp_path / "run"
    every = "callbacks.plain_progress.every_seconds=0"
    result = run_cli("train.py", *TINY, "logger=none", "trainer.max_epochs=2", every, run_dir=run)
    assert result.returncode == 0, result.stderr[-2000:]
    log_text = (run / "train.log").read_text()
    for text in (log_text, result.stdout + result.stderr):
        assert re.search(r"epoch 2/2 step \d+ loss [0-9.e-]+ [0-9.]+ it/s elapsed \d:\d\d:\d\d ETA \d:\d\d:\d\d", text)
        assert re.search(r"validation after epoch 1 \(step \d+\): val/loss [0-9.]+, val/psnr [0-9.]+", text)
    failed = tmp_path / "failed"
    probe = "+callbacks.fail._target_=tests.fixtures.probes.FailOnStart"
    result = run_cli("train.py", *TINY, "logger=none", probe, run_dir=failed)
    assert result.returncode != 0
    log_text = (failed / "train.log").read_text()
    assert "the run failed" in log_text and "FailOnStart" in log_text and "Traceback" in log_text
