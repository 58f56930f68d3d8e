"""The run directory, checked before anything writes into it: writable (a clear one-line error, not Hydra's
traceback from its own ``mkdir``), its task name a plain folder name, and not holding a finished run's results
unless ``overwrite=true``.

**A refused run writes nothing.** Hydra would write the run's ``.hydra/`` (config, overrides) and open its log
file before the job starts, so a run refused for a finished run's folder, a live run's lock, missing data or a
wrong config value used to rewrite the very run it was refused from. Here Hydra writes neither
(``hydra.output_subdir: null``; the log file's handler is a :class:`HeldFileHandler`): the job runs its checks,
then :func:`admit_run` writes ``.hydra/`` as Hydra would have and opens the log with every line logged so far. A
refused run's lines are dropped, and the folder Hydra made for it is removed if it is still empty.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from denoise.data.files import OutputExistsError, UnwritableError, writable_folder, write_text

log = logging.getLogger(__name__)
#: what a finished run leaves; a second run into the same folder replaces them only with overwrite=true
RESULT_FILES = ("results.json",)
#: where a run's config, Hydra config and overrides are written (Hydra's own ``output_subdir``)
RUN_CONFIG_DIR = ".hydra"
#: a task name is a folder under ``paths.log_dir`` and the log file's name: one plain path component
TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: how many lines a held log keeps before its run is admitted (the checks log a few; a flood is cut)
MAX_HELD_LINES = 10_000


def refuse_finished_run(run: Path, cfg: DictConfig, resuming: bool = False) -> None:
    """Refuse to write into a run directory that holds a finished run's results, unless ``overwrite=true`` or
    ``resuming`` (the run directory is the one of the checkpoint being continued: ``ckpt_path=last`` or a path in
    its ``checkpoints/``, e.g. to train more epochs; asked for explicitly, so it goes on)."""
    existing = [run / name for name in RESULT_FILES if (run / name).is_file()]
    if existing and not resuming and not cfg.get("overwrite", False):
        raise OutputExistsError(
            f"{existing[0]} already exists: {run} holds a finished run. Pass overwrite=true to replace its results, "
            "or choose another hydra.run.dir"
        )


def keep_earlier_results(run: Path, cfg: DictConfig) -> None:
    """A finished run being continued keeps its results beside the new ones as ``results.<n>.json`` (the first
    free n), never replaced; called once the run is admitted."""
    if cfg.get("overwrite", False):
        return
    for path in [run / name for name in RESULT_FILES if (run / name).is_file()]:
        number = 1
        while path.with_name(f"{path.stem}.{number}{path.suffix}").exists():
            number += 1
        kept = path.with_name(f"{path.stem}.{number}{path.suffix}")
        path.rename(kept)
        log.info("Continuing a finished run: its results are kept as %s", kept)


def check_task_name(value: Any) -> None:
    """``task_name`` names a folder under ``paths.log_dir`` and the run's log file: one plain name, so that
    ``task_name=../../x`` cannot put a run (or its log) outside the log folder."""
    if not isinstance(value, str) or not TASK_NAME.match(value):
        raise ValueError(
            f"task_name={value!r}: expected a plain name (letters, digits, '.', '_', '-'; no '/' or '..'), since it "
            "names the run's folder under paths.log_dir and its log file"
        )


class RunDirCheck(Callback):
    """Hydra callback (conf/hydra/default.yaml), before Hydra makes the run or sweep directory: the task name is a
    plain name, and the directory a writable folder (made now if missing, and remembered as made by this run, so
    that a refused run removes it again)."""

    def _check(self, config: DictConfig, key: str) -> None:
        folder = Path(str(OmegaConf.select(config, key))).expanduser()
        existed = folder.exists()
        try:
            check_task_name(config.get("task_name", "train"))
            writable_folder(folder, key)
        except (UnwritableError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        if not existed and key == "hydra.run.dir":
            _RUN["made"] = folder

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir")


# -- a refused run writes nothing: the run's log and .hydra/ held until its checks pass ---------------------------

#: this process's run, between Hydra starting the job and its checks passing: the folder this run made (to remove
#: if it is refused), the files Hydra would have written, and whether the run was admitted
_RUN: dict[str, Any] = {"made": None, "files": None, "admitted": False}


class HeldFileHandler(logging.FileHandler):
    """The run's log file (Hydra's ``job_logging`` file handler): lines are held in memory until the run is
    admitted (:func:`admit_run`), then written in order, with everything after; a refused run's are dropped."""

    def __init__(self, filename: str, mode: str = "a", encoding: str | None = None, **options: Any) -> None:
        super().__init__(filename, mode, encoding, delay=True, errors=options.get("errors"))
        self.held: list[str] | None = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.held is None:
            super().emit(record)
            return
        try:
            self.held.append(self.format(record))
        except Exception:  # logging's own rule: a record that cannot be formatted is reported, not raised
            self.handleError(record)
        del self.held[:-MAX_HELD_LINES]

    def write_held(self) -> None:
        """Open the file and write the held lines (the run is admitted); later lines go straight to it."""
        held, self.held = self.held, None
        if held:
            with self.lock:
                if self.stream is None:
                    self.stream = self._open()
                self.stream.write("".join(line + self.terminator for line in held))
                self.flush()

    def drop_held(self) -> None:
        """Forget the held lines (the run was refused); nothing is written."""
        if self.held is not None:
            self.held.clear()


def held_handlers() -> list[HeldFileHandler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, HeldFileHandler)]


def hold_run(cfg: DictConfig) -> None:
    """At the start of a job under Hydra: remember the files Hydra would have written into ``.hydra/`` (the job's
    config as it was given, the Hydra config, the overrides), for :func:`admit_run` to write."""
    _RUN["admitted"] = False
    if not HydraConfig.initialized():
        _RUN["files"] = None
        return
    hydra_cfg = HydraConfig.instance().cfg
    _RUN["files"] = {
        "config.yaml": OmegaConf.to_yaml(copy.deepcopy(cfg)),
        "hydra.yaml": OmegaConf.to_yaml(hydra_cfg),
        "overrides.yaml": OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task),
    }


def run_admitted() -> bool:
    return bool(_RUN["admitted"])


def admit_run() -> None:
    """The run's checks have passed: write its ``.hydra/`` (rank 0 of a multi-process run only, as Hydra's DDP
    children do not) and open its log. Idempotent."""
    if _RUN["admitted"]:
        return
    _RUN["admitted"] = True
    files = _RUN["files"]
    rank = next((os.environ[k] for k in ("RANK", "LOCAL_RANK", "SLURM_PROCID") if os.environ.get(k)), "0")
    if files and HydraConfig.initialized() and rank == "0":
        folder = Path(HydraConfig.get().runtime.output_dir) / RUN_CONFIG_DIR
        for name, text in files.items():
            write_text(folder / name, text)
    for handler in held_handlers():
        handler.write_held()


def refuse_run() -> None:
    """The run was refused before it was admitted: its held log lines dropped, and the run directory removed if
    this run made it and it is still empty."""
    if _RUN["admitted"]:
        return
    for handler in held_handlers():
        handler.drop_held()
    made = _RUN["made"]
    if made is not None:
        with contextlib.suppress(OSError):
            Path(made).rmdir()  # only when empty: never anything else's
        _RUN["made"] = None


#: libraries that print their log lines themselves as well as passing them on: each line came twice
SELF_PRINTING = ("lightning", "lightning.pytorch", "lightning.fabric")
#: library lines that tell a user nothing about the run: an advert, a note on Lightning's own defaults
NOISE = ("litlogger", "Skipping setting a default `ModelSummary` callback")


def _no_advert(record: logging.LogRecord) -> bool:
    return not any(words in record.getMessage() for words in NOISE)


def one_line_each() -> None:
    """Each log line once, through the run's handlers (the console and the log file): Lightning's own console
    handlers go (its lines reached the console twice in a pipe), and its advert is dropped."""
    for name in SELF_PRINTING:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if type(h) is logging.StreamHandler]:
            logger.removeHandler(handler)
        logger.propagate = True
    adverts = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _no_advert not in adverts.filters:
        adverts.addFilter(_no_advert)
