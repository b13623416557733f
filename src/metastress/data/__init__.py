"""Omniglot: download, 28x28 preparation, class splits and episode sampling."""
