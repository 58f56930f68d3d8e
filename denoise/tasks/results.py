"""The one results schema: what every results.json holds (train.py's and evaluate.py's), built here and nowhere
else, so that both speak of a run with the same keys: the test scores (``test/psnr``, ...), the run directory, the
scoring convention, the precision networks ran in, the device, and the code that made it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from denoise.evaluation.report import method_rows, print_table
from denoise.provenance import provenance

#: the scores every test reports (without clean images: test/noise_in and test/noise_out instead)
TEST_KEYS = ("test/psnr", "test/ssim", "test/psnr_noisy", "test/ssim_noisy")


def run_record(
    run_dir: Path, convention: Mapping[str, Any], eval_precision: str, device: str | None,
    test_scores: Mapping[str, float], one_network: bool = True, **fields: Any,
) -> dict[str, Any]:  # fmt: skip
    """A results.json: the test scores under ``test/*`` (the four of :data:`TEST_KEYS` always present where the
    run is about one network; none where evaluate.py compares several), the run directory, the convention, the
    precision of the networks (``eval_precision``; ``inference_precision``, the same, for evaluate.py's readers),
    the device, the provenance, and the job's own ``fields``."""
    record: dict[str, Any] = {key: test_scores.get(key) for key in TEST_KEYS} if one_network else {}
    record.update({k: v for k, v in test_scores.items() if k.startswith("test/")})
    record.update({"run_dir": str(run_dir), "metrics": dict(convention), "eval_precision": eval_precision,
                   "inference_precision": eval_precision, "device": device, **provenance()})  # fmt: skip
    record.update(fields)
    return record


#: how a results table names a test on the validation's images
ON_VALIDATION = "the test images are the validation's: not an independent test"


def print_test_table(results: Mapping[str, Any], network: str, out: Path) -> None:
    """The test scores as a table: input against the network, or the estimated noise without clean images; a test
    on the validation's images says so in its title."""
    caveat = f"; {ON_VALIDATION}" if results.get("test_is_validation") else ""
    if all(results.get(k) is not None for k in TEST_KEYS):
        rows = method_rows(dict(results), network)
        print_table(f"test results ({out}{caveat})", rows, ("method", "psnr", "ssim", "psnr_gain", "ssim_gain"))
    elif results.get("test/noise_in") is not None:
        rows = [{"method": "noisy input", "noise_sigma": results["test/noise_in"]},
                {"method": network, "noise_sigma": results["test/noise_out"]}]  # fmt: skip
        print_table(f"test results without ground truth: estimated noise sigma, 0-255 ({out})", rows,
                    ("method", "noise_sigma"))  # fmt: skip
