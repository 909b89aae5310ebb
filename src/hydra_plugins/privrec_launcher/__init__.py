"""privrec's Hydra plugins: the ``privrec`` launcher and sweeper (``hydra/launcher=privrec``,
``hydra/sweeper=privrec``). Hydra discovers them in the ``hydra_plugins`` namespace package; their configs are
registered in Hydra's ConfigStore by :mod:`.privrec_launcher` and :mod:`.privrec_sweeper`."""
