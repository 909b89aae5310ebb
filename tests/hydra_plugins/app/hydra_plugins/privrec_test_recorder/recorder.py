"""A test sweeper: privrec's sweeper that writes the jobs' return values to ``<sweep dir>/returns.json``.

Lets a test compare what a launcher hands back (values and order) across launchers."""

import json
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore

from hydra_plugins.privrec_launcher.privrec_sweeper import PrivrecSweeper, PrivrecSweeperConf


class RecordingSweeper(PrivrecSweeper):
    def sweep(self, arguments):
        returns = super().sweep(arguments)
        path = Path(self.config.hydra.sweep.dir) / "returns.json"
        path.write_text(json.dumps([[r.return_value for r in batch] for batch in returns]))
        return returns


@dataclass
class RecordingSweeperConf(PrivrecSweeperConf):
    _target_: str = "hydra_plugins.privrec_test_recorder.recorder.RecordingSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="recorder", node=RecordingSweeperConf,
                             provider="privrec_tests")
