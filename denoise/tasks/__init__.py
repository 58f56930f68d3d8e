"""The jobs the entry points run, built from a composed config: :func:`train` and :func:`evaluate`.

``compose`` is the Hydra glue (composing, instantiating, the run directory), ``resume`` which run to continue,
``training`` and ``evaluation`` the two jobs, ``wrapper`` the frame every job runs in (W&B closed, the run
directory logged, whatever happens).
"""

from denoise.tasks.compose import CONF_DIR, compose_config, instantiate, model_specs, run_dir
from denoise.tasks.evaluation import evaluate
from denoise.tasks.training import train

__all__ = ["CONF_DIR", "compose_config", "evaluate", "instantiate", "model_specs", "run_dir", "train"]
