"""Base learner and learned-optimizer networks."""

from metastress.models.conv4 import Conv4, init_weights

__all__ = ["Conv4", "init_weights"]
