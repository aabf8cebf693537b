"""ganzoo: a plugin-style GAN zoo. Plugins need only ``from ganzoo import hookimpl``."""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("ganzoo")

__all__ = ["__version__", "hookimpl"]
