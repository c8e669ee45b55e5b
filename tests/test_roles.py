"""Roles are defined once (``monitor.roles``): the API, the dashboard, the token table, the CLI
and the config's users all agree with it."""

from __future__ import annotations

import typing

import pytest
from click.testing import CliRunner

from dashboard.access import ACTION_ROLES, DASHBOARD_ROLES
from monitor.cli import main
from monitor.config import UserConfig
from monitor.roles import GRANTS, ROLES, SIGN_IN_ROLES, may, roles_with
from monitor.store import Store


def test_every_role_has_grants_and_admin_holds_every_permission() -> None:
    assert set(GRANTS) == set(ROLES)
    assert all(may("admin", p) for grants in GRANTS.values() for p in grants)
    assert not may("viewer", "ingest") and not may("ingest", "viewer") and not may("nobody", "viewer")


def test_the_dashboard_reads_its_roles_from_the_grants() -> None:
    assert DASHBOARD_ROLES == set(roles_with("viewer")) == set(SIGN_IN_ROLES)
    assert ACTION_ROLES == {"operator", "admin"} == set(roles_with("operator"))


def test_a_configured_user_takes_exactly_the_roles_that_sign_in() -> None:
    assert typing.get_args(UserConfig.model_fields["role"].annotation) == SIGN_IN_ROLES


def test_the_token_table_and_the_cli_take_every_role_and_refuse_others(store: Store) -> None:
    for role in ROLES:
        assert store.issue_token(role, "t")[0].role == role
    with pytest.raises(ValueError, match="unknown role"):
        store.create_token("root", "t")
    answer = CliRunner().invoke(main, ["token", "create", "--role", "root"])
    assert answer.exit_code == 2 and all(role in answer.output for role in ROLES)
