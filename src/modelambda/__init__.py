"""modelambda: serve a trained model on AWS Lambda through six deployment strategies.

This module stays import-free on purpose: the in-function runtime (`modelambda.runtime`)
is imported on every cold start, and Python imports this package first.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
