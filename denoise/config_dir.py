"""Where the config groups are: ``conf/`` beside the package (a clone or an editable install), light to import
so that every command's ``--help`` answers without loading PyTorch."""

from __future__ import annotations

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
