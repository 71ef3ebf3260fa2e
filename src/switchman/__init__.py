"""switchman: Unleash-compatible signals and actions."""

__version__ = "0.1.0"
