"""The demo's configuration: a retrain that waits for as many labelled rows as its traffic brings."""

from __future__ import annotations

from pathlib import Path

import yaml

from monitor.demo.config import WEBHOOK_SECRET_ENV, DemoPorts, demo_config
from monitor.settings import load_settings


def _waits_for(tmp_path: Path, speed: float, rows_per_second: float) -> int:
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(demo_config(str(tmp_path), DemoPorts(), speed, rows_per_second)))
    (policy,) = load_settings(path, environ={WEBHOOK_SECRET_ENV: "whsec_" + "A" * 32}).retrain
    return policy.min_labelled_rows


def test_at_the_demos_own_traffic_an_episode_retrain_waits_for_4000_labelled_rows(tmp_path: Path) -> None:
    assert _waits_for(tmp_path, speed=60.0, rows_per_second=40.0) == 4000  # 2,400 rows a window
    assert _waits_for(tmp_path, speed=120.0, rows_per_second=80.0) == 4000  # the demo test's


def test_thinner_windows_wait_for_under_two_windows_of_rows_and_never_under_500(tmp_path: Path) -> None:
    assert _waits_for(tmp_path, speed=240.0, rows_per_second=80.0) == 2040  # 1,200 rows a window
    assert _waits_for(tmp_path, speed=360.0, rows_per_second=10.0) == 500
