"""Mirador: keep a fleet of custom Ollama models honest."""

__version__ = "0.1.0"
