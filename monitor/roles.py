"""Who may do what: the four roles and what each is granted, defined once.

A token or dashboard user has one role; a route or a dashboard action asks for one
permission, named after the least role that has it. ``ingest`` only sends data;
``viewer`` reads; ``operator`` also acts (retrain, promote, roll back, acknowledge,
silence); ``admin`` may do everything, ingest included. The API (``monitor.server.auth``),
the dashboard (``dashboard.access``), the store's token table and the CLI all read these
tables. Standard library only, so that every layer may import it.

    >>> may("operator", "viewer"), may("viewer", "operator")
    (True, False)
    >>> roles_with("operator")
    ('operator', 'admin')
"""

from __future__ import annotations

ROLES = ("ingest", "viewer", "operator", "admin")
"""Every role, from least to most allowed (ingest is apart: it cannot read)."""
GRANTS: dict[str, frozenset[str]] = {
    "ingest": frozenset({"ingest"}),
    "viewer": frozenset({"viewer"}),
    "operator": frozenset({"viewer", "operator"}),
    "admin": frozenset({"ingest", "viewer", "operator", "admin"}),
}
"""The permissions each role holds."""
SIGN_IN_ROLES = ("viewer", "operator", "admin")
"""Roles a dashboard user may have (``users[].role``): those that can read."""


def may(role: str, permission: str) -> bool:
    """True when ``role`` holds ``permission`` (an unknown role holds nothing)."""
    return permission in GRANTS.get(role, frozenset())


def roles_with(permission: str) -> tuple[str, ...]:
    """The roles that hold ``permission``, in ``ROLES`` order."""
    return tuple(role for role in ROLES if may(role, permission))
