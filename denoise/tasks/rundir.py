"""The run directory, checked before anything writes into it: writable (a clear one-line error, not Hydra's
traceback from its own ``mkdir``), and not holding a finished run's results unless ``overwrite=true``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from denoise.data.files import OutputExistsError, UnwritableError, writable_folder

log = logging.getLogger(__name__)
#: what a finished run leaves; a second run into the same folder replaces them only with overwrite=true
RESULT_FILES = ("results.json",)


def refuse_finished_run(run: Path, cfg: DictConfig, resuming: bool = False) -> None:
    """Refuse to write into a run directory that holds a finished run's results, unless ``overwrite=true``.

    ``resuming``: the run directory is the one of the checkpoint being continued (``ckpt_path=last`` or a path
    in its ``checkpoints/``, e.g. to train more epochs): asked for explicitly, so it goes on, and the finished
    run's results are kept beside the new ones as ``results.<n>.json`` (the first free n), never replaced."""
    existing = [run / name for name in RESULT_FILES if (run / name).is_file()]
    if not existing or cfg.get("overwrite", False):
        return
    if not resuming:
        raise OutputExistsError(
            f"{existing[0]} already exists: {run} holds a finished run. Pass overwrite=true to replace its results, "
            "or choose another hydra.run.dir"
        )
    for path in existing:
        number = 1
        while path.with_name(f"{path.stem}.{number}{path.suffix}").exists():
            number += 1
        kept = path.with_name(f"{path.stem}.{number}{path.suffix}")
        path.rename(kept)
        log.info("Continuing a finished run: its results are kept as %s", kept)


class RunDirCheck(Callback):
    """Hydra callback (conf/hydra/default.yaml): the run or sweep directory must be a writable folder."""

    def _check(self, config: DictConfig, key: str) -> None:
        folder = OmegaConf.select(config, key)
        try:
            writable_folder(str(folder), key)
        except UnwritableError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir")
