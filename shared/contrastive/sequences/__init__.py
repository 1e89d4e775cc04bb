"""Sequence methods of the contrastive core: ``skeleton`` (HiCLR, skeleton action sequences) and
``rec`` (sequential recommendation). Import submodules directly; this package imports nothing."""
