"""Configuration: the frozen pydantic models of ``mlwatch.yaml``, validated once, at the edge,
then passed explicitly. ``monitor.settings.load_settings`` reads the file and the environment
into them. Nothing here reads the environment at import time.

    >>> Settings.model_validate({"store_url": "sqlite:///.mlwatch/mlwatch.db"}).store_url
    'sqlite:///.mlwatch/mlwatch.db'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.errors import ValidationFailed
from monitor.vocabulary import check_event_patterns, check_kind_name

if TYPE_CHECKING:
    from monitor.records import Service

_DURATION = re.compile(r"^\s*(\d{1,15}(?:\.\d{1,15})?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
MAX_DURATION = 100 * 365 * 86400.0
"""The longest duration any setting takes (100 years): past it, adding one to a time can overflow."""


def parse_duration(value: object) -> float:
    """Return seconds for ``"90s"``, ``"15m"``, ``"1h"``, ``"7d"`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '15m' or '1h', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value)[:100])
        if not match:
            raise ValueError(f"expected a duration such as '30s', '15m', '1h' or '7d', got {_shown(value)}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 0 <= seconds <= MAX_DURATION:  # also refuses NaN
        raise ValueError(f"expected a duration from 0 to 100 years, got {_shown(value)}")
    return seconds


def parse_positive_duration(value: object) -> float:
    """``parse_duration`` for intervals, where 0 would mean "again at once, forever"."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a positive duration such as '30s' or '4h', got {_shown(value)}")
    return seconds


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written in config as ``30s``, ``15m``, ``1h``, ``7d`` or a number (0 to 100 years)."""
PositiveDuration = Annotated[float, BeforeValidator(parse_positive_duration)]
"""A ``Duration`` that must be above zero: windows, intervals, timeouts."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str) -> str:
    """``value`` if every backend can store it: no NUL character (PostgreSQL refuses it in
    text) and no lone surrogate (no UTF-8 encoding exists for one); ValueError otherwise."""
    found = _UNSTORABLE.search(value)
    if found:
        kind = "a NUL character" if found.group() == "\x00" else "a lone surrogate"
        raise ValueError(f"expected text without NUL characters or lone surrogates, got {kind} at {found.start()}")
    return value


Text = Annotated[str, StringConstraints(max_length=200), AfterValidator(storable_text)]
"""A name, key or label value: at most 200 characters, storable on every backend."""
LongText = Annotated[str, StringConstraints(max_length=2000), AfterValidator(storable_text)]
"""A comment or message: at most 2,000 characters, storable on every backend."""

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
ServiceName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NAME_PATTERN)]
"""A service's name, in mlwatch.yaml, at registration and in paths: letters, digits, ``_.-``."""

MAX_DEPTH = 32
"""How deeply free-form values (alert rule options, request bodies) may nest."""


def check_depth(value: Any, limit: int = MAX_DEPTH) -> Any:
    """``value`` if its lists and mappings nest at most ``limit`` deep; ValueError otherwise.

    Iterative, so that a value nested thousands deep is refused rather than overflowing the stack.
    """
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list | tuple) else None
        if children is None:
            continue
        if depth > limit:
            raise ValueError(f"expected values nested at most {limit} levels deep")
        pending.extend((child, depth + 1) for child in children)
    return value


DRIFT_METHODS: dict[str, frozenset[str]] = {
    name: frozenset(kinds)
    for name, kinds in {
        "TVD": ("categorical",),
        "abs_text_content_drift": ("text",),
        "anderson": ("numerical",),
        "chisquare": ("categorical",),
        "cramer_von_mises": ("numerical",),
        "ed": ("numerical",),
        "empirical_mmd": ("numerical",),
        "es": ("numerical",),
        "fisher_exact": ("categorical",),
        "g_test": ("categorical",),
        "hellinger": ("categorical", "numerical"),
        "jensenshannon": ("categorical", "numerical"),
        "kl_div": ("categorical", "numerical"),
        "ks": ("numerical",),
        "mannw": ("numerical",),
        "perc_text_content_drift": ("text",),
        "psi": ("categorical", "numerical"),
        "t_test": ("numerical",),
        "wasserstein": ("numerical",),
        "z": ("categorical",),
    }.items()
}
"""Evidently's stattests and the feature types each takes (``drift_method``'s values). Kept
here so that loading a config does not import Evidently (6 s); ``tests/test_config.py``
checks it against Evidently's registry."""


def check_drift_method(method: str | None, kind: str) -> str | None:
    """``method`` if Evidently has a stattest of that name for ``kind`` features; else ValueError listing those."""
    if method is None or kind in DRIFT_METHODS.get(method, ()):
        return method
    valid = ", ".join(sorted(m for m, kinds in DRIFT_METHODS.items() if kind in kinds))
    raise ValueError(f"drift_method: expected a stattest for {kind} features, one of {valid}; got {_shown(method)}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)


FeatureType = Literal["numerical", "categorical", "text"]
Task = Literal["classification", "regression"]
Severity = Literal["info", "warning", "critical"]
WebhookFormat = Literal["json", "slack", "alertmanager", "pagerduty", "msteams", "email"]
"""The body formats of ``monitor.webhooks.formats.FORMATS`` (a test keeps the two equal)."""


class FeatureSpec(_Frozen):
    """One model input: its name and how drift and quality treat it (the API's ``FeatureIn`` too)."""

    name: Annotated[Text, StringConstraints(min_length=1)]
    type: FeatureType = "numerical"
    drift_method: Annotated[str, StringConstraints(max_length=100)] | None = None
    drift_threshold: float | None = Field(default=None, gt=0, le=1e6)

    @model_validator(mode="after")
    def _method_of_type(self) -> FeatureSpec:
        check_drift_method(self.drift_method, self.type)
        return self


MultivariateMethod = Literal["pca", "classifier"]
EmbeddingMethod = Literal["model", "mmd", "ratio", "distance"]
"""Evidently's embedding-drift methods (``evidently.legacy.metrics.data_drift.embedding_drift_methods``)."""


class MultivariateConfig(_Frozen):
    """``services[].multivariate``: joint drift of the inputs (see ``monitor.drift.multivariate``).

    The PCA reconstruction runs by default (about 0.6 s a check on 5,000 x 20); the domain
    classifier is opt-in (about 6 s a check on these 2 busy cores).
    """

    enabled: bool = True
    methods: tuple[MultivariateMethod, ...] = ("pca",)
    max_rows: int = Field(default=5_000, ge=100, le=100_000)
    max_features: int = Field(default=200, ge=2, le=10_000)
    """Features past which the joint methods are skipped (with that reason in the check): the
    reconstruction's cost grows with the square of the features, about 90 s a first check at
    500 uncorrelated features on these 2 cores against 1 s at 50 (``benchmarks/bench_wide.py``)."""
    variance: float = Field(default=0.65, gt=0, lt=1)
    auc_threshold: float = Field(default=0.55, gt=0.5, lt=1)


class TextConfig(_Frozen):
    """``services[].text``: what text features get besides Evidently's word-level test (``monitor.drift.text``)."""

    descriptors: bool = True
    embeddings: bool = False
    embedding_method: EmbeddingMethod = "model"
    embedding_rows: int = Field(default=1_000, ge=50, le=20_000)


class AttributionConfig(_Frozen):
    """``services[].attribution``: which features the model leans on now (``monitor.drift.attribution``).

    Off by default: it loads the window's model version from the MLflow registry and scores it
    ``repeats`` times per feature on up to ``max_rows`` labelled rows of the window and of the
    reference (1.4 s for the window's side at 2,000 rows x 8 features of the demo's
    gradient-boosting model on these 2 busy cores; the reference's side is computed once).
    """

    enabled: bool = False
    max_rows: int = Field(default=2_000, ge=100, le=100_000)
    repeats: int = Field(default=5, ge=1, le=50)
    threshold: float = Field(default=0.1, gt=0, le=1)
    """Drift when one feature's share of the importance moved by more than this."""


def check_quality_target(target: Mapping[str, float], task: str | None = None) -> dict[str, float]:
    """``target`` if it names known quality metrics (of ``task``, when given); else ValueError
    naming the metric and the ones expected."""
    from monitor.quality_metrics import metric, of_task

    for name in target:
        metric(name)  # ValueError naming the known metrics
        if task is not None and name not in of_task(task):
            raise ValueError(
                f"quality_target: {name!r} is not a {task} metric; expected one of {', '.join(of_task(task))}"
            )
    return dict(target)


MAX_SEGMENTS = 5
"""Segment columns a service may have: pairs of values are ranked too, so their number grows as its square."""


class CheckSettings(_Frozen):
    """How a service is checked: the settings ``services[]`` in mlwatch.yaml and ``POST /v1/services``
    set per service, with their defaults (written here only).

    - ``window``: the length of a scheduled check's window (default one hour);
    - ``latency_bound_ms``: the p95 latency the dashboard marks as too slow (none by default);
    - ``sample_size``: rows a check reads from a window and from the reference (default 20,000);
    - ``drift_share``: the share of drifted features from which a window has dataset drift
      (default 0.5, Evidently's);
    - ``quality_target``: the quality the service must keep, by metric (``{accuracy: 0.9}``):
      a model version's decay is measured against the better of its own baseline and this
      target, so a retrained model whose own holdout was mediocre still shows as decayed.
      Unset, a retrained version (one with a reference of its own) is held to the service's
      first baseline, that of the uploaded reference;
    - ``multivariate``, ``text``, ``attribution``: see ``MultivariateConfig``, ``TextConfig``
      and ``AttributionConfig``;
    - ``segments``: up to ``MAX_SEGMENTS`` columns (categorical features, or keys sent in a
      prediction's ``features`` by a service that registers none) whose values get their own
      drift, data quality and quality, and whose cohorts are ranked (``monitor.drift.segments``);
    - ``segment_top``: how many values of each segment column are judged, the most frequent first
      (default 10); ``segment_min_rows``: the sampled rows a value (or a pair of values) needs
      to be judged at all (default 100).

    A service's stored settings are read back with ``CheckSettings.of(service)``.
    """

    window: PositiveDuration = 3600.0
    latency_bound_ms: float | None = Field(default=None, gt=0)
    sample_size: int = Field(default=20_000, ge=100, le=1_000_000)
    drift_share: float = Field(default=0.5, gt=0, le=1)
    quality_target: dict[str, float] = Field(default_factory=dict, max_length=20)
    multivariate: MultivariateConfig = MultivariateConfig()
    text: TextConfig = TextConfig()
    attribution: AttributionConfig = AttributionConfig()
    segments: tuple[Annotated[Text, StringConstraints(min_length=1)], ...] = Field(default=(), max_length=MAX_SEGMENTS)
    segment_top: int = Field(default=10, ge=1, le=100)
    segment_min_rows: int = Field(default=100, ge=10, le=1_000_000)

    @field_validator("segments")
    @classmethod
    def _distinct_segments(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"expected each segment column once, got {_shown(repeated[0])} more than once")
        return value

    @field_validator("quality_target")
    @classmethod
    def _known_metrics(cls, target: dict[str, float]) -> dict[str, float]:
        return check_quality_target(target)

    @classmethod
    def decode(cls, config: Mapping[str, object]) -> CheckSettings:
        """The settings stored as a service's config (defaults for what it leaves out; other keys,
        such as ``reference``, ignored); ValidationFailed naming the setting a stored value breaks."""
        known = {k: v for k, v in config.items() if k in cls.model_fields}
        try:
            return cls.model_validate(known)
        except ValidationError as exc:
            problems = describe_problems(exc)
            raise ValidationFailed("config", f"the stored check settings are invalid: {problems}") from exc

    @classmethod
    def of(cls, service: Service) -> CheckSettings:
        """The check settings of a stored service."""
        return cls.decode(service.config)


class ServiceConfig(CheckSettings):
    """A monitored model service: what it is, and how it is checked (``CheckSettings``)."""

    name: ServiceName
    task: Task = "classification"
    model_name: Text | None = None
    target: Text | None = None
    reference: str | None = None
    features: tuple[FeatureSpec, ...] = ()

    @model_validator(mode="after")
    def _target_of_task(self) -> ServiceConfig:
        check_quality_target(self.quality_target, self.task)
        return self

    @model_validator(mode="after")
    def _known_segments(self) -> ServiceConfig:
        check_segments(self.segments, {f.name: f.type for f in self.features}, self.name)
        return self


def check_segments(segments: tuple[str, ...] | list[str], features: Mapping[str, str], service: str) -> None:
    """Raise ValueError naming ``segments[i]`` when a segment column is not a categorical feature of
    a service that registers its features (one that registers none may segment by any key it sends)."""
    for i, name in enumerate(segments):
        if name in segments[:i]:
            raise ValueError(f"segments[{i}]: expected each segment column once, got {_shown(name)} again")
    if not features:
        return
    categorical = sorted(name for name, kind in features.items() if kind == "categorical")
    for i, name in enumerate(segments):
        kind = features.get(name)
        if kind == "categorical":
            continue
        known = ", ".join(categorical[:20]) or "none"
        what = f"a {kind} feature" if kind else "not a feature"
        raise ValueError(
            f"segments[{i}]: {_shown(name)} is {what} of service {service!r}; a segment column must be one of its "
            f"categorical features ({known}), or register it as one"
        )


def check_address(value: str) -> str:
    """``value`` if it is one e-mail address (``ops@example.com``); ValueError saying what came otherwise."""
    from email.errors import HeaderParseError
    from email.headerregistry import Address

    try:
        address = Address(addr_spec=value)
    except (ValueError, IndexError, HeaderParseError) as exc:
        raise ValueError(f"expected one e-mail address such as ops@example.com, got {_shown(value)} ({exc})") from exc
    if not address.username or ("." not in address.domain and address.domain != "localhost"):
        raise ValueError(
            f"expected an e-mail address with a user and a domain such as ops@example.com, got {_shown(value)}"
        )
    return value


EmailAddress = Annotated[str, StringConstraints(min_length=3, max_length=254), AfterValidator(check_address)]
"""One address, as SMTP's ``MAIL FROM`` and ``RCPT TO`` take it (no display name)."""


class EmailConfig(_Frozen):
    """Who an ``email`` receiver's messages are from and to, and how it logs in to the SMTP server."""

    sender: EmailAddress = Field(alias="from")
    to: tuple[EmailAddress, ...] = Field(min_length=1, max_length=100)
    username: Text | None = None
    password_env: Text | None = None
    """The variable holding the SMTP password (never the password itself, which would land in logs)."""

    @model_validator(mode="after")
    def _credentials_together(self) -> EmailConfig:
        if (self.username is None) != (self.password_env is None):
            raise ValueError(
                "username and password_env go together: set both to log in, or neither to send without AUTH"
            )
        return self


HTTP_SCHEMES = ("http", "https")
SMTP_SCHEMES = ("smtp", "smtps")


def check_url_syntax(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) (or, for format email, smtp(s)) URL with a host; else ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in HTTP_SCHEMES + SMTP_SCHEMES:
        raise ValueError(
            f"expected an http:// or https:// URL (smtp:// or smtps:// for format email), "
            f"got scheme {parts.scheme or '(none)'!r}"
        )
    if not parts.hostname:
        raise ValueError(f"expected a URL with a host name, got {url!r}")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid port in {url!r}: {exc}") from exc
    return url


def check_scheme_of_format(format_name: str, url: str) -> None:
    """ValueError unless ``url``'s scheme is what ``format_name`` is sent over: SMTP for email, else HTTP."""
    scheme = urlsplit(url).scheme
    if format_name == "email" and scheme not in SMTP_SCHEMES:
        raise ValueError(
            f"format email is sent over SMTP: expected an smtp:// (STARTTLS) or smtps:// URL, got {scheme}://"
        )
    if format_name != "email" and scheme not in HTTP_SCHEMES:
        raise ValueError(
            f"format {format_name} is posted over HTTP: expected an http:// or https:// URL, got {scheme}://"
        )
    if scheme in SMTP_SCHEMES and urlsplit(url).username is not None:
        raise ValueError("expected smtp://host:port without credentials: use email.username and email.password_env")
    if scheme in SMTP_SCHEMES and urlsplit(url).path not in ("", "/"):
        raise ValueError(f"expected smtp://host:port with no path, got {url!r}")


class WebhookConfig(_Frozen):
    """A webhook receiver and what it is sent."""

    name: str = Field(min_length=1)
    url: str = Field(min_length=1)
    format: WebhookFormat = "json"
    secret_env: str | None = None
    routing_key_env: str | None = None
    """``pagerduty`` only, and required there: the variable holding the 32-character Integration Key."""
    email: EmailConfig | None = None
    """``email`` only, and required there: addresses and SMTP login (the URL is ``smtp://`` or ``smtps://``)."""
    min_severity: Severity = "info"
    match_labels: dict[str, str] = Field(default_factory=dict)
    events: tuple[str, ...] = ()
    timeout: PositiveDuration = 5.0
    retry_horizon: PositiveDuration = 24 * 3600.0
    backoff_initial: PositiveDuration = 2.0
    backoff_max: PositiveDuration = 600.0
    group_by: tuple[Text, ...] = Field(default=(), max_length=20)
    """Alert labels whose values make a group (``[service]``): a group's alerts go out as one
    notification that lists them. Empty (the default): every alert is notified on its own, at once."""
    group_wait: Duration = 30.0
    """How long a new group buffers alerts before its first notification (with ``group_by`` only)."""
    group_interval: PositiveDuration = 300.0
    """How long after a group's notification a change to it (an alert added or resolved) is notified."""
    repeat_interval: PositiveDuration = 4 * 3600.0
    """How long before a group that has not changed is notified again while an alert of it fires."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_url_syntax(value)

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_event_patterns(value)

    @model_validator(mode="after")
    def _routing_key_of_format(self) -> WebhookConfig:
        if self.format == "pagerduty" and not self.routing_key_env:
            raise ValueError(
                "format pagerduty needs routing_key_env: the name of the environment variable that holds "
                "the service's 32-character Integration Key (Events API v2)"
            )
        if self.format != "pagerduty" and self.routing_key_env:
            raise ValueError(f"routing_key_env is only used by format pagerduty, not {self.format}; remove it")
        return self

    @model_validator(mode="after")
    def _email_of_format(self) -> WebhookConfig:
        check_scheme_of_format(self.format, self.url)
        if self.format == "email" and self.email is None:
            raise ValueError(
                "format email needs email: {from: ADDRESS, to: [ADDRESS, ...]} (and username, password_env to log in)"
            )
        if self.format != "email" and self.email is not None:
            raise ValueError(f"email is only used by format email, not {self.format}; remove it")
        if self.format == "email" and self.secret_env:
            raise ValueError("secret_env signs HTTP bodies; format email does not use it, remove it")
        return self

    @model_validator(mode="after")
    def _grouping_needs_group_by(self) -> WebhookConfig:
        # a timing differing from its default: the defaults come back when settings are dumped and
        # re-read (the retrain process gets them so), and mean nothing without group_by anyway
        fields = type(self).model_fields
        timings = [
            n for n in ("group_wait", "group_interval", "repeat_interval") if getattr(self, n) != fields[n].default
        ]
        if timings and not self.group_by:
            raise ValueError(
                f"{timings[0]} is only used with group_by; add group_by (for example [service]) "
                "or remove it (a rule's own repeat_interval sets reminders of ungrouped alerts)"
            )
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError(f"group_by: a label is listed twice in {list(self.group_by)}")
        return self


class AlertRuleConfig(_Frozen):
    """An alert rule; ``kind`` picks what it watches."""

    name: Annotated[Text, StringConstraints(min_length=1)]
    kind: Annotated[str, StringConstraints(max_length=100)]
    service: Text | None = None
    host: Text | None = None
    model_version: Text | None = None
    feature: Text | None = None
    metric: Text | None = None
    threshold: float = Field(default=0.0, ge=-1e15, le=1e15)
    for_: Duration = Field(default=0.0, alias="for")
    severity: Severity = "warning"
    labels: dict[Text, Text] = Field(default_factory=dict, max_length=50)
    repeat_interval: PositiveDuration = 4 * 3600.0
    options: Annotated[dict[Text, Any], AfterValidator(check_depth)] = Field(default_factory=dict, max_length=50)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        return check_kind_name(value)


Matcher = Text | tuple[Text, ...]
"""A label's wanted value, or a list of values any of which matches."""


class InhibitRuleConfig(_Frozen):
    """While an alert matching ``source_match`` fires, alerts matching ``target_match`` that
    agree with it on every ``equal`` label are not notified (Alertmanager's ``inhibit_rules``).

    Example: no data, or a data-quality alert, for a service mutes its drift and decay alerts::

        inhibit_rules:
          - source_match: {kind: no_data}
            target_match: {kind: [drift_share, feature_drift, prediction_drift, quality_decay]}
            equal: [service]
    """

    source_match: dict[Text, Matcher] = Field(min_length=1, max_length=20)
    target_match: dict[Text, Matcher] = Field(min_length=1, max_length=20)
    equal: tuple[Text, ...] = Field(default=(), max_length=20)


class GateConfig(_Frozen):
    """When a challenger may replace the champion."""

    metric: str = "f1"
    min_gain: float = 0.0
    min_relative_gain: float = 0.0
    confidence: float = Field(default=0.95, ge=0.0, lt=1.0)
    """The gain must be significant at this confidence: the paired bootstrap interval of the gain
    on the holdout rows lies above zero. 0 switches the test off (then ``min_gain`` alone decides)."""
    floors: dict[str, float] = Field(default_factory=dict)


STAGES = ("shadow", "canary")
"""Rollout stages a challenger can pass through between the gate and promotion, in this order."""


def check_stages(stages: tuple[str, ...]) -> tuple[str, ...]:
    """``stages`` when each names a known stage once, in rollout order; ValueError saying which is not and why."""
    for stage in stages:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {_shown(stage)}; expected a list of: {', '.join(STAGES)}")
    if len(set(stages)) != len(stages):
        raise ValueError(f"each stage may be listed once, got {list(stages)!r}")
    if list(stages) != sorted(stages, key=STAGES.index):
        raise ValueError(f"stages run in the order {', '.join(STAGES)}; got {list(stages)!r}")
    return stages


class ShadowConfig(_Frozen):
    """How long a challenger is scored in shadow, and on how many labelled rows it is judged.

    The shadow stage ends when ``min_labelled`` of its rows have labels (then the gate's
    significance rule decides on those live rows) or after ``max_duration`` without that many.
    """

    min_labelled: int = Field(default=500, ge=1)
    max_duration: PositiveDuration = 86400.0


class CanaryConfig(_Frozen):
    """How much live traffic a canary serves, for how long, and the guards that roll it back.

    ``share`` of requests (sticky by request id) go to the canary for ``duration``; a canary
    that held that long is promoted. The guards compare it with the champion over the same
    period, each once both have enough rows: its error rate may exceed the champion's by at
    most ``max_error_rate_increase`` (absolute), its latency p95 may be at most
    ``max_latency_ratio`` times the champion's (both after ``min_requests`` requests), and
    its realized gate metric may be at most ``max_quality_drop`` worse (after
    ``min_labelled`` labelled rows each). A breach rolls it back at once.
    """

    share: float = Field(default=0.1, gt=0.0, lt=1.0)
    duration: PositiveDuration = 3600.0
    min_requests: int = Field(default=100, ge=1)
    max_error_rate_increase: float = Field(default=0.02, ge=0.0, le=1.0)
    max_latency_ratio: float = Field(default=1.5, gt=1.0, le=1000.0)
    min_labelled: int = Field(default=200, ge=1)
    max_quality_drop: float = Field(default=0.02, ge=0.0)


class RetrainConfig(_Frozen):
    """Retraining policy of one service."""

    service: str
    trigger: Literal["on_alert", "manual"] = "manual"
    retrain_on: tuple[Literal["decay", "estimated_decay", "drift"], ...] = ("decay", "estimated_decay")
    """Which firing alerts start a retrain under ``on_alert``: realized decay, estimated decay,
    drift. Drift alone alerts but retrains only when listed here."""
    mode: Literal["retrain", "fine_tune"] = "retrain"
    auto_promote: bool = False
    gate: GateConfig = GateConfig()
    trainer: str = "sklearn"
    project_uri: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    data_window: PositiveDuration = 7 * 86400.0
    max_production_rows: int = Field(default=200_000, ge=0)
    recency_half_life: Duration | None = None
    reference_weight: float = Field(default=1.0, ge=0.0)
    """Sample weight of reference rows in training (production rows weigh 1, or less with age);
    lower it when the concept has changed, 0 trains on production data alone."""
    min_labelled_rows: int = Field(default=500, ge=0, le=10_000_000)
    """Labelled production rows from after an episode's onset (``retrain.onset``) that an
    ``on_alert`` retrain waits for: it trains on the data of the change it reacts to, not on a
    window mostly from before it. 0 starts at once, on whatever the window holds."""
    cooldown: Duration = 3600.0
    daily_cap: int = Field(default=3, ge=0)
    timeout: PositiveDuration = 3600.0
    stages: Annotated[tuple[str, ...], AfterValidator(check_stages)] = ()
    """Rollout stages a challenger that passed the gate goes through before promotion
    (``[shadow]``, ``[canary]``, ``[shadow, canary]``); none: promoted at once (when ``auto_promote``)."""
    shadow: ShadowConfig = ShadowConfig()
    canary: CanaryConfig = CanaryConfig()


class RetentionConfig(_Frozen):
    """How long raw rows are kept before the worker deletes them."""

    predictions: PositiveDuration = 30 * 86400.0
    host_samples: PositiveDuration = 7 * 86400.0
    traffic_rollups: PositiveDuration = 400 * 86400.0


class CloudEventsConfig(_Frozen):
    """How ``POST /v1/cloudevents`` (KServe's InferenceLogger) finds services and how long a half waits.

    ``services`` maps an InferenceService (``ce-inferenceservicename``, or
    ``<namespace>/<name>`` to tell namespaces apart) to an mlwatch service; one not listed is
    the mlwatch service of the same name. A request or response whose other half has not come
    within ``pending_ttl`` is dropped and counted as expired.
    """

    services: dict[Annotated[str, StringConstraints(min_length=1, max_length=300)], ServiceName] = Field(
        default_factory=dict
    )
    pending_ttl: PositiveDuration = 3600.0


class UserConfig(_Frozen):
    """A dashboard login; ``password_hash`` is made by ``mlwatch user hash``."""

    username: str
    password_hash: str
    role: Literal["viewer", "operator", "admin"] = "viewer"
    """One of ``monitor.roles.SIGN_IN_ROLES`` (a test keeps the two equal)."""


class Settings(_Frozen):
    """Everything mlwatch is configured with."""

    store_url: str = "sqlite:///.mlwatch/mlwatch.db"
    mlflow_tracking_uri: str = "sqlite:///.mlwatch/mlflow.db"
    home: str = ".mlwatch"
    server_host: str = "127.0.0.1"
    server_port: int = Field(default=8000, ge=0, le=65535)
    dashboard_url: str | None = None
    """Where receivers reach the dashboard (e.g. ``https://mlwatch.example.com``); Slack messages
    link to it only when set, since a loopback default means nothing on a phone."""
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_batch_records: int = Field(default=10_000, ge=1)
    bootstrap_token: str | None = None
    dashboard_secret: str | None = None  # signs dashboard session cookies; the same on every replica
    check_interval: PositiveDuration = 60.0
    allow_private_webhooks: bool = False
    services: tuple[ServiceConfig, ...] = ()
    webhooks: tuple[WebhookConfig, ...] = ()
    alerts: tuple[AlertRuleConfig, ...] = ()
    inhibit_rules: tuple[InhibitRuleConfig, ...] = ()
    """None by default: inhibition changes who is paged, so it is opted into (see ``InhibitRuleConfig``)."""
    retrain: tuple[RetrainConfig, ...] = ()
    retention: RetentionConfig = RetentionConfig()
    cloudevents: CloudEventsConfig = CloudEventsConfig()
    users: tuple[UserConfig, ...] = ()

    def service(self, name: str) -> ServiceConfig | None:
        """The configured service called ``name``, if any."""
        return next((s for s in self.services if s.name == name), None)

    def retrain_policy(self, service: str) -> RetrainConfig:
        """The retrain policy of ``service`` (defaults where none is configured)."""
        found = next((r for r in self.retrain if r.service == service), None)
        return found or RetrainConfig(service=service)


def describe_problems(exc: ValidationError) -> str:
    """Each problem of a failed validation as ``key.path: message (got value)``, joined by ``; ``."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)
