"""ganzoo: a plugin-style GAN zoo.

Plugins need only ``from ganzoo import hookimpl`` and the public core API, ``ganzoo.core.*``
(docs/plugins.md); scripts and notebooks use ``ganzoo.api`` (docs/python-api.md). Importing ganzoo
loads nothing else: no torch, no plugins, no import hooks.
"""

import pluggy

__version__ = "0.6.0"
PLUGIN_API = "0.6.0"  # the plugin contract's version; a plugin may declare the one it needs (GANZOO_PLUGIN_API = "0.5")

hookimpl = pluggy.HookimplMarker("ganzoo")

__all__ = ["PLUGIN_API", "__version__", "hookimpl"]
