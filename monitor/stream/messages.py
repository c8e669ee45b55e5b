"""A broker message as records: its subject names the kind and the service, its body is an API body.

``predictions.<service>`` holds what ``POST /v1/services/{service}/predictions`` takes
(``{"records": [...]}``) or one such record alone; ``labels.<service>`` holds what the labels
endpoint takes (``{"labels": [...]}``) or one label. The bodies go through the API's decoders
(``monitor.server.wire`` and the pydantic schemas), so a message is refused exactly where a
request would be, with the same message.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import pydantic_core
from pydantic import ValidationError

from monitor.errors import ValidationFailed
from monitor.records import LabelRecord, PredictionRecord
from monitor.server.errors import invalid_body
from monitor.server.schemas import LabelBatch, LabelIn
from monitor.server.wire import decode_predictions

KINDS = ("predictions", "labels")
"""The first token of a subject: what its messages hold."""

_KEYS = msgspec.json.Decoder(dict[str, msgspec.Raw])  # the top-level keys only; values are left unparsed


@dataclass(frozen=True, slots=True)
class Message:
    """A message as a broker delivered it: ``deliveries`` is 1 the first time, more when redelivered.

    ``published`` (epoch seconds) is when the broker took the message in, ``pending`` how many
    messages still wait behind it for this consumer; either is None where the broker does not say.
    """

    subject: str
    data: bytes
    deliveries: int = 1
    published: float | None = None
    pending: int | None = None


@dataclass(frozen=True, slots=True)
class Decoded:
    """The records of one message, for one service: predictions or labels, never both."""

    kind: str  # one of KINDS
    service: str
    predictions: list[PredictionRecord]
    labels: list[LabelRecord]

    @property
    def request_ids(self) -> list[str]:
        """The request ids the message holds, in its order."""
        return [r.request_id for r in (self.predictions if self.kind == "predictions" else self.labels)]

    def __len__(self) -> int:
        return len(self.predictions) + len(self.labels)


def decode(message: Message, max_records: int) -> Decoded:
    """The records of ``message``; ValidationFailed saying what is wrong with its subject or body.

    >>> decode(Message("labels.credit", b'{"request_id": "r1", "label": 1}'), 10_000).labels[0].label
    1
    """
    kind, service = subject_parts(message.subject)
    try:
        if kind == "predictions":
            found = Decoded(kind, service, _predictions(message.data), [])
        else:
            found = Decoded(kind, service, [], _labels(message.data))
    except ValidationError as exc:
        raise _refused(exc) from None
    if len(found) > max_records:
        field = "records" if kind == "predictions" else "labels"
        raise ValidationFailed(field, f"at most {max_records} items per message, got {len(found)}; split the batch")
    return found


def _refused(exc: ValidationError) -> ValidationFailed:
    """The API's message for a body pydantic refused: one field named alone, several summed up."""
    _, _, text, errors = invalid_body(exc.errors())
    if len(errors) == 1:
        return ValidationFailed(errors[0]["field"], errors[0]["message"])
    return ValidationFailed("body", text)


def subject_parts(subject: str) -> tuple[str, str]:
    """``("predictions", "credit")`` for ``predictions.credit``; ValidationFailed for any other shape."""
    kind, _, service = subject.partition(".")
    if kind not in KINDS or not service:
        raise ValidationFailed(
            "subject", f"expected predictions.<service> or labels.<service>, got {subject!r}; publish there"
        )
    return kind, service


def _predictions(raw: bytes) -> list[PredictionRecord]:
    if _is_one(raw, "records"):
        # A whole JSON object without "records" (an unknown field of a batch): one record,
        # read as a batch of one so that the fast decoder and its checks apply.
        return decode_predictions(b'{"records":[' + raw + b"]}")
    return decode_predictions(raw)


def _labels(raw: bytes) -> list[LabelRecord]:
    if _is_one(raw, "labels"):
        return [LabelIn.model_validate_json(raw).record()]
    return [r.record() for r in LabelBatch.model_validate_json(raw or b"null").labels]


def _is_one(raw: bytes, batch_key: str) -> bool:
    """Whether ``raw`` is a JSON object without ``batch_key``; anything not an object is left to
    the batch decoder, which says what is wrong with it."""
    if raw.startswith(b'{"%s":' % batch_key.encode()):  # what publishers send: no need to read the keys
        return False
    try:
        return batch_key not in _KEYS.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        pass
    try:  # pydantic's parser also reads NaN and Infinity, which its validation then names
        found = pydantic_core.from_json(raw)
    except ValueError:
        return False
    return isinstance(found, dict) and batch_key not in found
