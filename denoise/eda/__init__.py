"""Exploratory data analysis of any dataset: ``denoise-eda data=<config> [data.root=PATH]``.

Streams every noisy/clean pair of the dataset once (one pair in memory at a time) and writes into the run
directory ``eda.md`` with PNG plots and ``eda.json`` with every number:

* counts per category from the dataset's own metadata (SIDD: phone, ISO, shutter, illuminant, brightness;
  RENOIR: camera and batch; NIND: scene and ISO; synthetic data: split) and image sizes;
* per pair, from the residual ``noisy - clean``: noise standard deviation per channel and the noisy input's
  PSNR; noise against ISO per camera as box plots;
* signal-dependent noise: the residual's variance against clean intensity in bins, accumulated per group
  (camera and ISO), and a fitted Poisson-Gaussian model ``var = a * x + b`` per group (Foi et al. 2008);
* residual histograms against the Gaussian of the measured standard deviation, and a grid of sample pairs
  with zoomed crops.

For synthetic data the report sets the configured noise beside the measured one.
"""

from denoise.eda.report import run, write_report
from denoise.eda.statistics import Analysis, analyze, fit_poisson_gaussian
from denoise.eda.streaming import Sample, iter_samples

__all__ = ["Analysis", "Sample", "analyze", "fit_poisson_gaussian", "iter_samples", "run", "write_report"]
