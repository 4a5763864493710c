"""model-risk-audit: a pre-adoption risk audit of foundation models."""

__version__ = "0.1.0"

__all__ = ["__version__"]
