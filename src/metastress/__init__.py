"""metastress: stress-testing meta-learning algorithms for few-shot learning."""

__version__ = "0.1.0"
