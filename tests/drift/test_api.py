"""The check, report and reference endpoints on a real ``mlwatch server`` process."""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Iterator

import httpx
import pytest

from monitor.store import Store
from tests.conftest import RunningServer, start_server
from tests.drift.conftest import FEATURES, make_scenario

_NAMES = itertools.count()
SERVICE = {
    "task": "classification",
    "target": "target",
    "features": [{"name": f.name, "type": f.type} for f in FEATURES],
}


def _parquet(frame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


def _send_window(client: httpx.Client, name: str, rows: int, seed: int, end: float, **shift: float) -> None:
    frame = make_scenario(rows, seed, **shift).frame
    names = [f.name for f in FEATURES]
    records = [
        {
            "request_id": f"r{i}",
            "timestamp": end - 3000 + i * 2000 / rows,
            "features": {n: (float(v) if isinstance(v, float) else v) for n, v in zip(names, row[:-2], strict=True)},
            "prediction": int(row[-2]),
            "probabilities": {"0": 1 - float(row[-1]), "1": float(row[-1])},
            "model_version": "1",
        }
        for i, row in enumerate(frame[[*names, "prediction", "proba_1"]].itertuples(index=False, name=None))
    ]
    assert client.post(f"/v1/services/{name}/predictions", json={"records": records}).status_code == 200
    labels = [{"request_id": f"r{i}", "label": int(y)} for i, y in enumerate(frame["target"][: rows // 2])]
    assert client.post(f"/v1/services/{name}/labels", json={"labels": labels}).status_code == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server for this module (each test uses a service of its own): it imports
    Evidently on the first check, which is worth paying once."""
    workdir = tmp_path_factory.mktemp("server")
    running = start_server(workdir, f"sqlite:///{workdir / 'mlwatch.db'}")
    yield running
    running.stop()


@pytest.fixture
def name(server: RunningServer) -> str:
    """A freshly registered service."""
    registered = f"credit{next(_NAMES)}"
    assert server.client().post("/v1/services", json={"name": registered, **SERVICE}).status_code == 200
    return registered


@pytest.fixture
def admin(server: RunningServer) -> httpx.Client:
    return server.client()


def test_check_runs_on_uploaded_reference_and_its_report_is_kept(admin: httpx.Client, name: str) -> None:
    reply = admin.post(
        f"/v1/services/{name}/reference",
        content=_parquet(make_scenario(3000, seed=1).frame),
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["rows"] == 3000 and reply.json()["baseline"]["accuracy"] > 0.6
    end = time.time()
    _send_window(admin, name, 2000, seed=2, end=end, mean_shift=0.8)
    check = admin.post(f"/v1/services/{name}/checks", json={"end": end}).json()
    assert check["status"] == "ok", check
    assert check["summary"]["drifted_features"] == ["mean_shift"]
    assert check["summary"]["label_coverage"] == pytest.approx(0.5)
    assert set(check["summary"]["quality"]) >= {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    listed = admin.get(f"/v1/services/{name}/checks").json()
    assert [c["id"] for c in listed] == [check["id"]]
    assert admin.get(f"/v1/checks/{check['id']}").json()["summary"] == check["summary"]
    report = admin.get(check["report_url"])
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    # opened from the API, its scripts run in an origin of their own (no API cookies or storage)
    policy = report.headers["content-security-policy"]
    assert "sandbox allow-scripts" in policy and "allow-same-origin" not in policy
    assert "frame-ancestors 'none'" in policy
    assert (report.headers["x-content-type-options"], report.headers["referrer-policy"]) == ("nosniff", "no-referrer")
    assert "mean_shift" in report.text  # the drift report
    assert "Model quality (labelled rows)" in report.text and "Accuracy" in report.text  # and the quality one
    assert admin.get(check["report_url"]).content == report.content  # kept, not re-rendered


def test_reference_accepts_json_records_csv_and_multipart_per_model_version(admin: httpx.Client, name: str) -> None:
    frame = make_scenario(200, seed=3).frame
    as_json = admin.post(
        f"/v1/services/{name}/reference", json={"records": frame.to_dict("records"), "model_version": "2"}
    )
    assert as_json.status_code == 200, as_json.text
    assert (as_json.json()["model_version"], as_json.json()["rows"]) == ("2", 200)
    as_csv = admin.post(
        f"/v1/services/{name}/reference?model_version=3",
        content=frame.to_csv(index=False).encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert as_csv.status_code == 200 and as_csv.json()["model_version"] == "3"
    multipart = admin.post(
        f"/v1/services/{name}/reference", files={"file": ("ref.parquet", _parquet(frame))}, data={"model_version": ""}
    )
    assert multipart.status_code == 200 and multipart.json()["model_version"] == ""
    assert multipart.json()["source"] == "api:ref.parquet"


def test_bad_requests_get_clear_4xx_answers(server: RunningServer, admin: httpx.Client, name: str) -> None:
    assert admin.post("/v1/services/nope/checks").status_code == 404
    assert "unknown service 'nope'" in admin.get("/v1/services/nope/checks").json()["message"]
    assert admin.post("/v1/services/nope/reference", json={"records": [{"a": 1}]}).status_code == 404
    assert admin.get("/v1/checks/12345/report").status_code == 404
    garbage = admin.post(
        f"/v1/services/{name}/reference",
        content=b"PAR1 not really",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert garbage.status_code == 422 and "Parquet" in garbage.json()["message"]
    unrelated = admin.post(f"/v1/services/{name}/reference", json={"records": [{"colour": "red"}]})
    assert unrelated.status_code == 422 and "expected columns named after the features" in unrelated.json()["message"]
    nan = admin.post(
        f"/v1/services/{name}/reference",
        content=b'{"records": [{"stable": NaN}]}',
        headers={"Content-Type": "application/json"},
    )
    assert nan.status_code == 422 and nan.json()["errors"][0]["field"] == "records[0].stable"
    empty = admin.post(f"/v1/services/{name}/reference", json={"records": []})
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "records"
    backwards = admin.post(f"/v1/services/{name}/checks", json={"start": 10, "end": 5})
    assert backwards.status_code == 422 and "start" in backwards.json()["message"]
    store = Store.open(server.store_url)
    viewer = server.client(store.create_token("viewer"))
    store.close()
    assert viewer.post(f"/v1/services/{name}/checks").status_code == 403
    assert viewer.get(f"/v1/services/{name}/checks").status_code == 200
    assert httpx.get(f"{server.url}/v1/services/{name}/checks").status_code == 401


def test_check_without_reference_is_stored_as_error_and_empty_window_has_no_report(
    admin: httpx.Client, name: str
) -> None:
    check = admin.post(f"/v1/services/{name}/checks", json={"start": 0, "end": 3600}).json()
    assert (check["status"], check["summary"]["rows"]) == ("no_data", 0)
    assert admin.get(check["report_url"]).status_code == 409
    _send_window(admin, name, 300, seed=4, end=time.time())
    check = admin.post(f"/v1/services/{name}/checks").json()
    assert check["status"] == "error" and "no reference data" in check["error"]


def test_api_start_up_does_not_import_evidently(tmp_path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from monitor.config import Settings; from monitor.server.app import create_app; "
        "from monitor.store import Store; "
        f"create_app(Settings(), Store.open('sqlite:///{tmp_path / 'x.db'}')); "
        "print('evidently' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "False"


def test_reports_and_references_the_store_cannot_use_get_4xx_answers_that_say_why(admin: httpx.Client) -> None:
    """Issue 14's 500s: a report with no common column (ZeroDivisionError), a nested reference
    (RecursionError), a window past year 9999 (OverflowError)."""
    name = f"bare{next(_NAMES)}"
    assert admin.post("/v1/services", json={"name": name, "task": "classification"}).status_code == 200
    reference = {"records": [{"x": float(i)} for i in range(50)]}
    assert admin.post(f"/v1/services/{name}/reference", json=reference).status_code == 200
    now = time.time()
    records = [{"request_id": f"r{i}", "timestamp": now - 100 + i, "features": {"y": 1.0}} for i in range(50)]
    assert admin.post(f"/v1/services/{name}/predictions", json={"records": records}).status_code == 200
    check = admin.post(f"/v1/services/{name}/checks", json={"start": now - 200, "end": now + 1}).json()
    assert check["status"] == "ok" and check["summary"]["skipped_features"] == {
        "x": "no prediction of the window has this feature"
    }
    report = admin.get(check["report_url"])
    assert report.status_code == 409 and "no column with values on both sides" in report.json()["message"]
    nested = b'{"records": [{"x": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1001 + b"]}"
    answer = admin.post(f"/v1/services/{name}/reference", content=nested, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert admin.post(f"/v1/services/{name}/checks", json={"start": 0, "end": 1e21}).status_code == 422
    assert admin.get(f"/v1/services/{name}/stats", params={"start": 0, "end": 1e21}).status_code == 422


def test_a_check_of_a_segmented_service_returns_its_segments_and_cohorts(admin: httpx.Client) -> None:
    name = f"segmented{next(_NAMES)}"
    body = {"name": name, **SERVICE, "segments": ["city", "segment"], "segment_top": 2}
    assert admin.post("/v1/services", json=body).status_code == 200
    reference = _parquet(make_scenario(3000, seed=1).frame)
    headers = {"Content-Type": "application/vnd.apache.parquet"}
    assert admin.post(f"/v1/services/{name}/reference", content=reference, headers=headers).status_code == 200
    end = time.time()
    _send_window(admin, name, 2000, seed=2, end=end)
    check = admin.post(f"/v1/services/{name}/checks", json={"end": end}).json()
    found = admin.get(f"/v1/checks/{check['id']}").json()["summary"]["segments"]
    assert found["columns"] == ["city", "segment"] and found["metric"] == "accuracy"
    assert {(s["column"], s["value"]) for s in found["segments"]} == {
        ("city", "paris"), ("city", "lyon"), ("segment", "a"), ("segment", "b")
    }  # fmt: skip
    assert all(s["quality_source"] == "realized" and s["labelled"] >= 100 for s in found["segments"])
    assert {"city": "paris"} in [c["segment"] for c in found["cohorts"]]
    assert all(c["baseline_source"] == "reference" for c in found["cohorts"])


@pytest.mark.parametrize(
    ("segments", "field", "said"),
    [
        (["city", "nope"], "segments[1]", "'nope' is not a feature of service"),
        (["stable"], "segments[0]", "'stable' is a numerical feature of service"),
        (["city", "city"], "segments[1]", "expected each segment column once"),
    ],
)
def test_a_segment_that_is_not_a_categorical_feature_is_refused_naming_it(
    admin: httpx.Client, segments: list[str], field: str, said: str
) -> None:
    answer = admin.post("/v1/services", json={"name": f"bad{next(_NAMES)}", **SERVICE, "segments": segments})
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["errors"]
    assert problem["field"] == field and said in problem["message"]
