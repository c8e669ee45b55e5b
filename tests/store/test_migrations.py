"""The Alembic chain creates exactly the schema the code declares, on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from monitor.errors import StoreError
from monitor.store import Store
from monitor.store.engine import make_engine
from monitor.store.migrate import alembic_config, current_revision, head_revision
from monitor.store.schema import metadata


def test_migrations_produce_the_declared_schema(store_url: str) -> None:
    store = Store.open(store_url, migrate=True)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    store.close()
    assert diff == []


def test_migration_chain_has_a_single_head() -> None:
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


def test_embedded_store_migrates_itself_on_open(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    assert current_revision(store.engine) == head_revision()
    store.close()


def test_unmigrated_postgres_store_asks_for_db_upgrade(postgres_url: str) -> None:
    with pytest.raises(StoreError, match="run `mlwatch db upgrade`"):
        Store.open(postgres_url)
    engine = make_engine(postgres_url)
    assert current_revision(engine) is None
    engine.dispose()
