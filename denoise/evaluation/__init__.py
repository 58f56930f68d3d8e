"""Evaluation: the scores under their conventions (``metrics``), the classical filters (``filters``), every filter
and network on the same images (``comparison``), and the tables, plots and grids (``report``)."""
