"""launcher=slurm on a real one-node SLURM cluster (scripts/local_slurm.sh): a 2-task DDP job, and a job
requeued mid-run that resumes from its checkpoint in the same run directory and W&B run.

The cluster is started for this module and stopped after. It needs root and Debian's slurm-wlm and munge
(`scripts/local_slurm.sh install`); CI installs them, so there a missing cluster is a failure, elsewhere a skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.helpers import ROOT, TINY, read_results

# one pytest-xdist worker runs them all (pyproject: --dist loadfile keeps a file's tests together): one cluster,
# started once; two would contend for SLURM's ports
pytestmark = pytest.mark.slow
SCRIPT = ROOT / "scripts" / "local_slurm.sh"


def _cluster_up(env: dict[str, str]) -> bool:
    result = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, check=False)
    return result.returncode == 0 and bool(re.search(r"idle|mixed|allocated", result.stdout))


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An environment whose SLURM_CONF points at a running cluster (ours, started here, or one given)."""
    if os.environ.get("SLURM_CONF") and shutil.which("sinfo") and _cluster_up(dict(os.environ)):
        yield dict(os.environ)
        return
    search_path = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"  # the daemons live in /usr/sbin
    missing = [
        cmd for cmd in ("slurmctld", "slurmd", "munged", "sbatch") if shutil.which(cmd, path=search_path) is None
    ]
    reason = None
    if missing:
        reason = f"SLURM is not installed ({', '.join(missing)} missing): run 'sudo {SCRIPT} install'"
    elif os.geteuid() != 0:
        reason = "starting a local SLURM cluster needs root"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the SLURM tests: {reason}")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "DENOISE_SLURM_DIR": str(folder), "SLURM_CONF": str(folder / "slurm.conf")}
    subprocess.run(["bash", str(SCRIPT), "start"], env=env, check=True, capture_output=True, timeout=120)
    try:
        yield env
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, check=False, capture_output=True, timeout=60)


def _submit(env: dict[str, str], logs: Path, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "train.py",
        "-m",
        "launcher=slurm",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "slurm.cpus_per_task=1",
        "slurm.time_min=15",
        f"paths.log_dir={logs}",
        *[o for o in TINY if not o.startswith("trainer.max_epochs")],
        *overrides,
    ]


def _job_dir(logs: Path) -> Path:
    (job,) = list((logs / "train" / "slurm").glob("*/0_job*"))
    return job


def test_ddp_job_with_world_size_2(slurm_env: dict[str, str], tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    cmd = _submit(slurm_env, logs, "trainer.max_epochs=1", "logger=none")
    result = subprocess.run(cmd, cwd=ROOT, env=slurm_env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]

    job = _job_dir(logs)
    results = read_results(job)
    assert results["world_size"] == 2 and results["global_step"] == 1  # 8 crops, batch 4 per device, 2 devices
    assert results["run_dir"] == str(job)
    job_id = job.name.removeprefix("0_job")
    script = (job.parent / ".submitit" / job_id / f"{job_id}_submission.sh").read_text()
    for line in ("--ntasks-per-node=2", "--nodes=1", "--cpus-per-task=1", "--signal=USR1@120", "--time=15"):
        assert line in script
    assert "gpus" not in script  # a CPU run asks for no GPUs
    # both tasks ran as DDP ranks of one job
    logs_out = sorted((job.parent / ".submitit" / job_id).glob("*_log.err"))
    assert len(logs_out) == 2


def test_requeued_job_resumes_in_the_same_run_directory(slurm_env: dict[str, str], tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    # 8 steps per epoch (64 crops, batch 4 per device, 2 devices), 20 epochs: long enough to requeue mid-run
    cmd = _submit(slurm_env, logs, "data.samples_per_epoch=64", "trainer.max_epochs=20", "logger=wandb")
    process = subprocess.Popen(
        cmd, cwd=ROOT, env=slurm_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 180
        while not list((logs / "train" / "slurm").glob("*/0_job*/checkpoints/last.ckpt")):
            assert process.poll() is None and time.monotonic() < deadline, "the job never wrote a checkpoint"
            time.sleep(0.5)
        job = _job_dir(logs)
        job_id = job.name.removeprefix("0_job")
        subprocess.run(["scontrol", "requeue", job_id], env=slurm_env, check=True, timeout=30)
        # SLURM holds a requeued job for two minutes (BeginTime); once it is pending again, let it start now
        for _ in range(120):
            state = subprocess.run(
                ["squeue", "-h", "-j", job_id, "-o", "%T"], env=slurm_env, capture_output=True, text=True
            ).stdout.strip()
            if state == "PENDING":
                subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], env=slurm_env, check=True)
                break
            time.sleep(0.5)
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-3000:]

    assert _job_dir(logs) == job  # one run directory for both starts of the job
    log = (job / "train.log").read_text()
    assert "Stopped by a signal at global step" in log
    assert "(a requeued job): resuming from it" in log
    stopped_at = int(re.search(r"Stopped by a signal at global step (\d+)", log).group(1))
    results = read_results(job)
    assert 0 < stopped_at < results["global_step"] == 20 * 8 and results["world_size"] == 2
    assert torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 160
    ids = sorted(p.name.rsplit("-", 1)[-1] for p in (job / "wandb").glob("offline-run-*"))
    assert len(ids) == 2 and ids[0] == ids[1], f"one W&B run across the requeue, got {ids}"
    restarts = subprocess.run(["scontrol", "show", "job", job_id], env=slurm_env, capture_output=True, text=True)
    assert "Restarts=1" in restarts.stdout
