"""Alembic environment: migrations target layers.models.metadata."""

from __future__ import annotations

from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine

from alembic import context
from layers.models import metadata

config = context.config


def _include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    # PostGIS and tiger/topology tables are not ours to autogenerate.
    if type_ == "table" and name in {"spatial_ref_sys"}:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return str(url)
    from layers.cluster import database_url
    from layers.settings import Settings

    return database_url(Settings())


def run_migrations_offline() -> None:
    """Emit SQL without a live connection."""
    context.configure(
        url=_url(),
        target_metadata=metadata,
        literal_binds=True,
        include_object=_include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations on a connection given by layers.migrate, or one opened here."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=_include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
