"""ganzoo's built-in plugins, one package each, loaded through the ``ganzoo`` entry-point group exactly
like a third party's (pyproject.toml). Their import names live under ``ganzoo.plugins``, where no
third-party package can shadow them; the folder stays at the top of the repository."""
