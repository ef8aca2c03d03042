"""Run the Alembic migrations in alembic/ programmatically."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from alembic import command

ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"


def alembic_config(engine: Engine) -> Config:
    """Alembic Config pointing at this project's migrations and the given engine."""
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.attributes["url"] = engine.url.render_as_string(hide_password=False)
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Migrate the database up to `revision` (all heads by default)."""
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Migrate the database down to `revision` (empty by default)."""
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current_heads(engine: Engine) -> set[str]:
    """Revisions the database is at."""
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def expected_heads(engine: Engine) -> set[str]:
    """Head revisions of the migration scripts."""
    return set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())


def is_up_to_date(engine: Engine) -> bool:
    """True when the database is migrated to every head."""
    return current_heads(engine) == expected_heads(engine)


def postgis_version(engine: Engine) -> str | None:
    """The PostGIS library version of the database (raises when it is unreachable)."""
    with engine.connect() as conn:
        found = conn.execute(text("SELECT postgis_lib_version()")).scalar()
    return None if found is None else str(found)
