"""Denoising architectures: one plain ``nn.Module`` per file, no Lightning or Hydra.

rednet (Mao et al. 2016), mwcnn (Liu et al. 2018), pridnet (Zhao et al. 2019), dncnn (Zhang et al. 2017),
nafnet (Chen et al. 2022) and a conv autoencoder baseline. A network may declare ``size_multiple`` (the
height/width multiple it needs); every one of them also pads and crops internally, so any size works.
``denoise-models`` prints the table of every config in ``conf/model/``.
"""
