"""Every command of the suite, one module each, one style: Hydra commands (train, evaluate, eda, prepare) compose
``conf/<name>.yaml`` and run a job of :mod:`denoise.tasks`; the plain commands (models, predict) take argparse
options. Each is a console script (``denoise-train``, ``denoise-evaluate``, ``denoise-eda``, ``denoise-prepare``,
``denoise-models``, ``denoise-predict``) and a module (``python -m denoise.cli.train``); ``train.py`` and
``evaluate.py`` at the root are shims for the first two. Nothing below this package imports it.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import denoise  # noqa: F401  (registers the config resolvers)
from denoise.config.paths import CONF_DIR
from denoise.config.resolvers import require_extra

#: command-line choices that need an optional part: (pattern of the override, module it needs)
NEEDS_EXTRA = (
    (re.compile(r"^\+?launcher=slurm$"), "hydra_plugins.hydra_submitit_launcher"),
    (re.compile(r"^\+?launcher=joblib$"), "hydra_plugins.hydra_joblib_launcher"),
    (re.compile(r"^\+?hparams_search=optuna$"), "hydra_plugins.hydra_optuna_sweeper"),
    (re.compile(r"^\+?logger=.*tensorboard"), "tensorboard"),
)


def check_extras(argv: Sequence[str]) -> None:
    """Stop with the ``pip install`` that fixes it when an override asks for an optional part that is missing
    (Hydra would fail later with a list of the plugins it knows)."""
    for argument in argv:
        for pattern, module in NEEDS_EXTRA:
            if pattern.match(argument):
                try:
                    require_extra(module, argument)
                except ImportError as err:
                    print(f"error: {err}", file=sys.stderr)
                    raise SystemExit(2) from None


def check_environment(argv: Sequence[str]) -> None:
    """What the machine must have for the overrides given, in one line where it has not: ``launcher=slurm`` where
    there is no SLURM (submitit's own error is a 25-line traceback)."""
    for argument in argv:
        if NEEDS_EXTRA[0][0].match(argument):
            check_slurm(argument)


def check_slurm(argument: str) -> None:
    """``launcher=slurm`` where there is no SLURM, or one that does not answer: one line saying so and what to do."""
    import shutil
    import subprocess

    advice = "run it on a cluster's login node, start a one-node cluster here (bash scripts/local_slurm.sh start)"
    advice += ", or run several jobs on this machine with launcher=joblib"
    if shutil.which("sbatch") is None:
        message = f"{argument} submits the runs to SLURM, and this machine has none (no sbatch on PATH): {advice}"
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)
    try:
        answer = subprocess.run(["sinfo", "--noheader"], capture_output=True, text=True, timeout=20)
        failed = answer.returncode != 0
        reason = (answer.stderr.strip().splitlines() or ["no answer"])[-1]
    except (OSError, subprocess.TimeoutExpired) as err:
        failed, reason = True, str(err)
    if failed:
        print(f"error: {argument}: SLURM does not answer on this machine (sinfo: {reason}): {advice}", file=sys.stderr)
        raise SystemExit(2)


#: errors about the user's data, settings or files (every error the suite raises for them is one of these): one
#: message on the terminal, the traceback in the run's log file; anything else keeps Hydra's traceback
USER_ERRORS = (ValueError, OSError)


def to_log_file(err: BaseException, message: str = "%s") -> list[logging.FileHandler]:
    """``err`` with its traceback into the run's log file (Hydra's file handler) only, not the console."""
    trace = (type(err), err, err.__traceback__)
    record = logging.LogRecord("denoise", logging.ERROR, __file__, 0, message, (err,), trace)
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    for handler in files:
        handler.handle(record)
    return files


def one_line_error(err: BaseException) -> None:
    """``err``'s message on stderr, its traceback in the run's log file (Hydra's file handler) only: a run refused
    before its checks passed has no log file (it writes nothing)."""
    files = [handler for handler in to_log_file(err) if getattr(handler, "held", None) is None]
    print(f"error: {err}", file=sys.stderr)
    if files:
        print(f"(the traceback is in {files[0].baseFilename})", file=sys.stderr)


def add_own_configs(argv: list[str]) -> None:
    """A ``conf/`` in the directory a command runs from (a project of the user's, beside an installed suite) is
    searched before the suite's own: ``conf/experiment/mine.yaml`` there is ``experiment=mine``."""
    from pathlib import Path

    own = Path.cwd() / "conf"
    if not own.is_dir() or own.resolve() == CONF_DIR.resolve() or any("hydra.searchpath" in a for a in argv[1:]):
        return
    argv.append(f"hydra.searchpath=[file://{own.resolve()}]")


#: how the checks name each Hydra command (its job function's name -> what a user typed)
COMMAND_LABELS = {"train": "train.py", "evaluate": "evaluate.py", "eda": "denoise-eda", "prepare": "denoise-prepare"}


def hydra_command(config_name: str, job_path: str) -> Callable[[], Any]:
    """The entry point of a Hydra command: ``conf/<config_name>.yaml`` composed from the command line, then the job
    ``job_path`` (``module:function``, imported only when a run starts, so that ``--help`` and ``--cfg`` answer
    without loading PyTorch) called with the config; what it returns goes back to Hydra (a sweeper optimizes it)."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
    def command(cfg: Any) -> Any:
        from denoise.tasks.rundir import admit_run, hold_run, one_line_each, refuse_run
        from denoise.tasks.schema import early_check

        module, _, function = job_path.partition(":")
        hold_run(cfg)  # nothing is written into the run directory until the job's checks pass (admit_run)
        try:
            early_check(cfg, COMMAND_LABELS.get(function, function))  # before PyTorch loads: a typo answers in a second
            job = getattr(importlib.import_module(module), function)
            one_line_each()  # Lightning, imported by now, prints nothing itself: each line once, through Hydra's
            result = job(cfg)
        except USER_ERRORS as err:
            refuse_run()  # refused before its checks passed: no .hydra/, no log file, no empty folder
            if HydraConfig.get().mode != RunMode.RUN:  # a sweep's job: the launcher reports it
                to_log_file(err, "the run failed: %s")
                raise
            one_line_error(err)
            raise SystemExit(2) from None
        except Exception as err:  # a fault of the suite: Hydra shows it, and the run's log file keeps it
            admit_run()
            to_log_file(err, "the run failed: %r")
            raise
        except KeyboardInterrupt as err:
            to_log_file(err, "the run failed: %r")
            raise
        admit_run()  # a job with nothing that could refuse it
        return result

    def main() -> Any:
        from denoise.config import resolvers

        resolvers.COMMAND["name"] = job_path.rpartition(":")[2]  # --help names the command
        if "--version" in sys.argv[1:]:
            from denoise.provenance import version_line

            print(version_line())
            return None
        check_extras(sys.argv[1:])
        check_environment(sys.argv[1:])
        add_own_configs(sys.argv)
        return command()

    return main


def add_version(parser: Any) -> Any:
    """``--version`` on an argparse command: the suite's version and git commit (looked up only when asked)."""
    import argparse

    class Version(argparse.Action):
        def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
            from denoise.provenance import version_line

            print(version_line())
            parser.exit()

    parser.add_argument("--version", nargs=0, action=Version, help="the suite's version and git commit")
    return parser
