"""A fresh local world per test; the synthesized template is shared by the whole process (see template.py)."""

import pytest

from local_mode.world import LocalWorld


@pytest.fixture
def world(tmp_path):
    with LocalWorld(tmp_path / "out") as local_world:
        yield local_world
