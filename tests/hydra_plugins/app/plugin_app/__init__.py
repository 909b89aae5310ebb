"""A tiny Hydra application for the tests of privrec's Hydra plugins (run with ``python -m plugin_app``)."""
