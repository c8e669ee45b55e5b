"""Chart specs and the tables behind them: legends in version order, folded old versions,
drift coloured against each test's threshold, one time format, readable axes."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard import charts, frames
from dashboard.panels.quality import baseline_caption
from monitor.records import CheckRecord, TrafficBucket


def _buckets(versions: list[str], minutes: int = 3) -> list[TrafficBucket]:
    """One bucket per minute for each version; version ``i`` last serves at minute ``minutes + i``."""
    out = []
    for i, version in enumerate(versions):
        for m in range(i, minutes + i):
            out.append(TrafficBucket(60.0 * m, version, 10, 1, 5.0, 4.0, 9.0, 12.0))
    return out


def test_version_legends_sort_as_numbers_not_text() -> None:
    assert charts.version_order(["3", "11", "1", "unknown", "12", "b", "older"]) == [
        "1", "3", "11", "12", "b", "older", "unknown",
    ]  # fmt: skip
    frame = frames.traffic_frame(_buckets(["11", "3", "1"]))
    assert charts.throughput(frame, 60).spec["encoding"]["color"]["sort"] == ["1", "3", "11"]
    assert charts.errors(frame).spec["encoding"]["color"]["sort"] == ["1", "3", "11"]


def test_versions_past_the_newest_five_are_summed_into_older() -> None:
    versions = [str(v) for v in range(1, 11)]
    frame = frames.traffic_frame(_buckets(versions))
    folded = frames.fold_versions(frame)
    assert set(folded["version"]) == {"6", "7", "8", "9", "10", "older"}
    assert folded["requests"].sum() == frame["requests"].sum()
    older = folded[folded["version"] == "older"]
    assert (older["error_rate"] == older["errors"] / older["requests"]).all()
    assert older["p95_ms"].isna().all()  # percentiles do not add up, so folded rows carry none


def test_error_rate_axis_does_not_print_six_decimals() -> None:
    spec = charts.errors(frames.traffic_frame(_buckets(["1"]))).spec
    assert spec["encoding"]["y"]["axis"]["format"] == ".2~%"


def test_every_time_chart_writes_times_one_way() -> None:
    frame = frames.traffic_frame(_buckets(["1", "2"]))
    for chart in (charts.latency(frames.latency_long(frame)), charts.throughput(frame, 60), charts.errors(frame)):
        encoding = (chart.spec.get("layer") or [chart.spec])[0]["encoding"]
        assert "%Y-%m-%d" in encoding["x"]["axis"]["labelExpr"]
        assert next(t for t in encoding["tooltip"] if t["field"] == "time")["format"] == charts.TIME_FORMAT


def test_resource_legend_names_each_series_once() -> None:
    from monitor.records import HostSample

    samples = [
        ("vm", HostSample(60.0, "host", "", {"cpu_percent": 5.0})),
        ("vm", HostSample(60.0, "process", "gunicorn", {"cpu_percent": 2.0})),
    ]
    frame = frames.resources_frame(samples)
    assert sorted(charts.resource(frame, "cpu_percent").data["series"]) == ["gunicorn", "vm"]


@pytest.mark.parametrize(
    ("score", "threshold", "drifted", "strength"),
    [
        (0.9, 0.05, False, 0.05 / 0.9),  # p-value well above its threshold: quiet
        (0.01, 0.05, True, 5.0),  # p-value below: drifted, five times past
        (0.05, 0.1, False, 0.5),  # distance half way to its threshold
        (0.3, 0.1, True, 3.0),  # distance three thresholds out
        (0.0, 0.05, True, 1e6),  # p-value of zero: capped, still finite
    ],
)
def test_drift_strength_is_one_at_the_threshold_whichever_way_the_test_points(
    score: float, threshold: float, drifted: bool, strength: float
) -> None:
    assert frames.drift_strength(score, threshold, drifted) == pytest.approx(strength)


def _check(check_id: int, end: float, features: list[dict[str, object]]) -> CheckRecord:
    return CheckRecord(check_id, 1, end - 3600, end, end, "1", "ok", "schedule", {}, {"features": features})


def test_undrifted_p_value_features_are_not_the_hottest_cells() -> None:
    features = [
        {"name": "quiet_p", "method": "ks", "score": 0.97, "threshold": 0.05, "drifted": False},
        {"name": "drifted_distance", "method": "wasserstein", "score": 0.4, "threshold": 0.1, "drifted": True},
    ]
    chart = charts.drift_heatmap(frames.drift_frame([_check(1, 7200.0, features)]))
    by_feature = chart.data.set_index("feature")["strength"]
    assert by_feature["quiet_p"] < 1 < by_feature["drifted_distance"]
    scale = chart.spec["encoding"]["color"]["scale"]
    assert scale["domain"] == [0, 1, charts.STRENGTH_CAP]  # fixed to the thresholds, not fitted to the data


def test_a_heatmap_of_one_check_draws_a_column_and_every_feature_name() -> None:
    features = [
        {"name": f"feature_{i:02d}", "method": "ks", "score": 0.5, "threshold": 0.05, "drifted": False}
        for i in range(30)
    ]
    chart = charts.drift_heatmap(frames.drift_frame([_check(1, 7200.0, features)]))
    assert chart.spec["encoding"]["x"]["type"] == "ordinal"  # a temporal x gives a lone check no width
    assert chart.spec["encoding"]["x"]["timeUnit"] == "yearmonthdatehoursminutes"  # local time, as elsewhere
    assert chart.spec["encoding"]["y"]["axis"]["labelOverlap"] is False
    assert chart.spec["height"] == {"step": 22}  # a band per feature, never squeezed


def test_baseline_caption_names_the_model_version_it_belongs_to() -> None:
    assert "model version 7" in baseline_caption("f1", 0.81, "7")
    assert "reference data" not in baseline_caption("f1", 0.81, "7")
    assert baseline_caption("f1", None, "7").startswith("No baseline f1 yet")


def test_folding_keeps_frames_with_few_versions_as_they_are() -> None:
    frame = frames.traffic_frame(_buckets(["1", "2"]))
    pd.testing.assert_frame_equal(frames.fold_versions(frame), frame)


def test_throughput_leaves_headroom_above_the_busiest_stacked_bucket() -> None:
    frame = frames.traffic_frame(_buckets(["1", "2"]))  # minute 1 and 2: both versions, 20 requests
    spec = charts.throughput(frame, 60).spec
    assert spec["encoding"]["y"]["scale"]["domain"][1] > 20


def test_throughput_gives_every_version_a_row_in_every_bucket_so_stacks_do_not_interpolate_gaps() -> None:
    frame = frames.traffic_frame(_buckets(["1", "2"]))  # version 1 minutes 0-2, version 2 minutes 1-3
    data = charts.throughput(frame, 60).data
    assert len(data) == 4 * 2
    assert data.loc[(data["version"] == "1") & (data["time"] == data["time"].max()), "requests"].item() == 0


def test_quality_chart_has_one_legend_for_its_series() -> None:
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime([0, 0, 0], unit="s", utc=True),
            "series": charts.QUALITY_SERIES,
            "value": [0.8, 0.7, 0.9],
            "label_coverage": [0.5] * 3,
        }
    )
    top = charts.quality(frame, "f1").spec["vconcat"][0]["encoding"]
    assert top["color"]["title"] == top["strokeDash"]["title"] == "series"  # merged, so the legend shows
    assert "legend" not in top["color"] and "legend" not in top["strokeDash"]
