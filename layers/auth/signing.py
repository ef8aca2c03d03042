"""The token signing key shared by every API replica: kept in the database, created once.

Precedence: IOC_SECRET_KEY; else STATE_DIR/secret_key when it exists (installs from before
issue 23 keep their key, and publish it for replicas that join later); else the database's
key, created by whichever replica starts first (INSERT .. ON CONFLICT DO NOTHING, so replicas
starting together agree on one) and copied into the state directory, where
`Settings.signing_key()` reads it.
"""

from __future__ import annotations

import logging
import os
import secrets

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects.postgresql import insert

from layers.models.cluster import cluster_secret
from layers.settings import SECRET_FILE, Settings

SIGNING_KEY = "signing_key"

log = logging.getLogger(__name__)


def stored_secret(conn: Connection, name: str, candidate: str) -> str:
    """The secret `name` in the database, storing `candidate` if there is none yet."""
    conn.execute(
        insert(cluster_secret)
        .values(name=name, value=candidate)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return str(
        conn.execute(
            select(cluster_secret.c.value).where(cluster_secret.c.name == name)
        ).scalar_one()
    )


def _write_private(path: os.PathLike[str], value: str) -> None:
    """Create `path` (mode 0600) holding value; an existing file is left alone."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


def ensure_shared_signing_key(engine: Engine, settings: Settings) -> str:
    """Agree with the other replicas on the signing key (see the module docstring)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = settings.state_dir / SECRET_FILE
    local = path.read_text().strip() if path.exists() else None
    with engine.begin() as conn:
        shared = stored_secret(conn, SIGNING_KEY, local or secrets.token_hex(32))
    if local is None:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        _write_private(path, shared)
        return settings.signing_key()
    if local != shared:
        log.warning(
            "%s differs from the signing key the other replicas share: tokens issued here are"
            " refused by them; set IOC_SECRET_KEY on every replica, or remove the file",
            path,
        )
    return local
