"""Every command of the suite, one module each, one style: Hydra commands (train, evaluate, eda, prepare) compose
``conf/<name>.yaml`` and run a job of :mod:`denoise.tasks`; the plain commands (models, predict) take argparse
options. Each is a console script (``denoise-train``, ``denoise-evaluate``, ``denoise-eda``, ``denoise-prepare``,
``denoise-models``, ``denoise-predict``) and a module (``python -m denoise.cli.train``); ``train.py`` and
``evaluate.py`` at the root are shims for the first two. Nothing below this package imports it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import hydra
from omegaconf import DictConfig

import denoise  # noqa: F401  (registers the config resolvers)
from denoise.resolvers import require_extra
from denoise.tasks.compose import CONF_DIR

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


def hydra_command(config_name: str, job: Callable[[DictConfig], Any]) -> Callable[[], Any]:
    """The entry point of a Hydra command: ``conf/<config_name>.yaml`` composed from the command line, then
    ``job(cfg)``; what the job returns goes back to Hydra (a sweeper optimizes it)."""

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
    def command(cfg: DictConfig) -> Any:
        return job(cfg)

    def main() -> Any:
        check_extras(sys.argv[1:])
        return command()

    return main
