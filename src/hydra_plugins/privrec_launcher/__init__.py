"""privrec's Hydra launcher plugin (Hydra discovers plugins in the ``hydra_plugins`` namespace package)."""
