"""The README's examples run as written: its curl calls and SDK snippet against a real server,
its YAML snippets through the configuration loader.

Only the host and port are changed (a free loopback port instead of ``localhost:8000``);
every other character of each example is what a reader copies.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import Settings
from tests.conftest import RunningServer

README = Path(__file__).resolve().parents[1] / "README.md"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_blocks(language: str, section: str | None = None) -> list[str]:
    """The fenced code blocks of ``language`` in the README (under ``## section`` if given)."""
    text = README.read_text()
    if section is not None:
        start = text.index(f"\n## {section}\n")
        end = text.find("\n## ", start + 1)
        text = text[start : end if end != -1 else len(text)]
    return [body for lang, body in _FENCE.findall(text) if lang == language]


def json_documents(text: str) -> Iterator[Any]:
    """Each JSON value printed one after another (curl prints bodies without separators)."""
    decoder = json.JSONDecoder()
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        yield value


def _run(script: str, server: RunningServer, language: str) -> subprocess.CompletedProcess[str]:
    host_port = server.url.removeprefix("http://")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLWATCH_STORE_URL": server.store_url,
        "MLWATCH_URL": server.url,
        "XDG_CACHE_HOME": str(server.workdir / "cache"),  # a spool of its own
    }
    command = ["bash", "-euo", "pipefail", "-c"] if language == "bash" else [sys.executable, "-c"]
    return subprocess.run(
        [*command, script.replace("localhost:8000", host_port)],
        cwd=server.workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _http_api_example(server: RunningServer) -> list[Any]:
    (block,) = readme_blocks("bash", "HTTP API")
    done = _run(block, server, "bash")
    assert done.returncode == 0, done.stderr
    return list(json_documents(done.stdout))


def test_readme_curl_examples_succeed_against_a_real_server(server: RunningServer) -> None:
    answers = _http_api_example(server)
    errors = [a for a in answers if isinstance(a, dict) and "error" in a]
    assert errors == []
    service, predictions, labels, stats = answers
    assert service["name"] == "credit" and [f["name"] for f in service["features"]] == ["age", "city"]
    assert (predictions["accepted"], labels["accepted"]) == (1, 1)
    assert sum(bucket["count"] for bucket in stats["buckets"]) == 1


def test_readme_sdk_example_logs_its_predictions(server: RunningServer) -> None:
    _http_api_example(server)  # registers the service the SDK example logs to
    (block,) = [b for b in readme_blocks("python", "Integrating a service") if "Tracker(" in b]
    env_token = f"import os\nos.environ['MLWATCH_TOKEN'] = {server.token!r}\n"
    done = _run(env_token + block, server, "python")
    assert done.returncode == 0, done.stderr
    with server.client() as client:
        buckets = client.get("/v1/services/credit/stats", params={"bucket": 300}).json()["buckets"]
    assert sum(bucket["count"] for bucket in buckets) == 1 + 3


@pytest.mark.parametrize("section", ["Alerts and webhooks", "Retraining, promotion and serving"])
def test_readme_yaml_examples_are_valid_configuration(section: str) -> None:
    blocks = readme_blocks("yaml", section)
    assert blocks
    for block in blocks:
        raw = {"services": [{"name": "credit", "model_name": "credit", "target": "default"}], **yaml.safe_load(block)}
        settings = Settings.model_validate(raw)
        assert settings.model_dump(exclude_defaults=True).keys() >= set(yaml.safe_load(block))
