"""OFA-VE visual-entailment inference service."""

__version__ = "0.1.0"
