"""The LightningDataModule family, as the configs name it (``_target_: denoise.data.datamodule.<Class>``): one
base owns batching, workers, samplers, the input check and the pair stream (``datamodule_base.py``); each
subclass only says where its data comes from (``datamodule_synthetic.py``, ``datamodule_paired.py``)."""

from denoise.data.datamodule_base import DenoiseDataModule, InputCheckError, PaddedToWorld, available_cores
from denoise.data.datamodule_noisy import NoisyFolderDataModule
from denoise.data.datamodule_noisy_pairs import NoisyPairsDataModule
from denoise.data.datamodule_paired import PairedDataModule
from denoise.data.datamodule_synthetic import SyntheticDataModule

__all__ = [
    "DenoiseDataModule",
    "InputCheckError",
    "NoisyFolderDataModule",
    "NoisyPairsDataModule",
    "PaddedToWorld",
    "PairedDataModule",
    "SyntheticDataModule",
    "available_cores",
]
