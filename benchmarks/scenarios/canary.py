"""The faulty challengers of the canary scenarios, registered beside the demo's champion.

Each wraps the champion itself (an MLflow pyfunc model with the champion as its artifact and
the champion's signature), so that the one thing that differs is the fault: ``errors``
raises on every call, ``slow`` answers as the champion does after ``SLOW_SECONDS``. The
scenario then starts it as a canary through the API, as an operator would.

    >>> version = register_faulty(tracking_uri, "credit", "errors", workdir)
    >>> start_canary(api, "credit", version, share=0.2)
"""

from __future__ import annotations

from pathlib import Path

import httpx

SLOW_SECONDS = 0.25
SHARE = 0.2
FAULTY = """
import time

import mlflow.pyfunc
from mlflow.models import set_model

KIND = {kind!r}


class Faulty(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.champion = mlflow.pyfunc.load_model(context.artifacts["champion"])

    def predict(self, context, model_input, params=None):
        if KIND == "errors":
            raise RuntimeError("canary scenario: this version fails every request")
        time.sleep({seconds})
        return self.champion.predict(model_input)


set_model(Faulty())
"""


def register_faulty(tracking_uri: str, model: str, kind: str, workdir: Path) -> str:
    """Register a version of ``model`` that fails (``errors``) or is slow (``slow``); its version number."""
    import mlflow.artifacts
    import mlflow.pyfunc
    from mlflow.models import Model

    from retrain.registry import CHAMPION, make_client

    client = make_client(tracking_uri)
    champion = client.get_model_version_by_alias(model, CHAMPION).version
    uri = client.get_model_version_download_uri(model, champion)
    source = mlflow.artifacts.download_artifacts(
        artifact_uri=uri, dst_path=str(workdir / "champion"), tracking_uri=tracking_uri
    )
    code = workdir / f"faulty_{kind}.py"
    code.write_text(FAULTY.format(kind=kind, seconds=SLOW_SECONDS))
    path = workdir / f"faulty_{kind}"
    mlflow.pyfunc.save_model(
        str(path),
        python_model=str(code),
        artifacts={"champion": source},
        signature=Model.load(source).signature,
    )
    return str(client.create_model_version(model, str(path)).version)


def start_canary(api: httpx.Client, service: str, version: str, share: float = SHARE) -> dict[str, object]:
    """Start ``version`` of ``service`` as a canary taking ``share`` of the requests; the stage record."""
    answer = api.post(f"/v1/services/{service}/stages", json={"version": version, "stage": "canary", "share": share})
    answer.raise_for_status()
    return dict(answer.json())
