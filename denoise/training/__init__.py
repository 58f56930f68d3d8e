"""Training: the one LightningModule (``module``), what a network learns from (``objectives``, ``losses``), the
optimizer and the schedules that follow the clock (``optim``), and what keeps a run honest and readable: the
non-finite guard, host-side step logging, the progress bar and lines, pre-emption, the loggers, the run lock and
the sweep helpers."""
