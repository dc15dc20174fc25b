"""``FORUM_REDIS_CLUSTER`` (common/settings.py, workers/settings.py): a cluster cannot hold
Dramatiq's Redis broker, so the broker must be named elsewhere; a wrong setting is one
line from the CLI, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import msgspec
import pytest

from service.settings import Settings
from tests.conftest import ROOT


def test_a_cluster_needs_a_broker_of_its_own():
    with pytest.raises(msgspec.ValidationError, match="FORUM_BROKER_URL"):
        Settings.from_env({"FORUM_REDIS_CLUSTER": "true"})
    chosen = Settings.from_env({"FORUM_REDIS_CLUSTER": "true",
                                "FORUM_BROKER_URL": "amqp://127.0.0.1:5672/"})
    assert chosen.redis_cluster and chosen.broker == "amqp://127.0.0.1:5672/"
    assert not Settings.from_env({}).redis_cluster


@pytest.mark.parametrize("setting", [("FORUM_REDIS_CLUSTER", "true"),
                                     ("FORUM_PER_PAGE", "many")])
def test_a_wrong_setting_is_one_line_from_the_cli(setting: tuple[str, str]):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORUM_")}
    env[setting[0]] = setting[1]
    done = subprocess.run([sys.executable, "-m", "service", "status"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("Error: a FORUM_* setting is wrong:"), done.stderr
