"""Where the config groups are: ``conf/`` at the top of a clone (or an editable install), else ``denoise/conf``
inside an installed wheel (pyproject maps one to the other). Light to import, so that every command's ``--help``
answers without loading PyTorch."""

from __future__ import annotations

from pathlib import Path

#: the clone's conf/, beside the package
CHECKOUT_CONF = Path(__file__).resolve().parents[2] / "conf"
#: the copy an installed wheel carries
PACKAGED_CONF = Path(__file__).resolve().parents[1] / "conf"
CONF_DIR = CHECKOUT_CONF if (CHECKOUT_CONF / "train.yaml").is_file() else PACKAGED_CONF
