"""The rules of CONTRIBUTING "Layout and ownership", checked on the source tree.

- Only `layers/` runs SQL: no statement execution, no `text()` SQL, no COPY in ingest,
  analytics, vision, geo_api or web_map (an AST scan, so comments and strings do not count).
- Every connection is built in `layers/db.py`: nothing else calls `psycopg.connect`,
  `AsyncConnection.connect`, `create_engine` or builds a `psycopg_pool` pool.
- The import contracts in pyproject.toml ([tool.importlinter]) hold (`lint-imports`).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_STORAGE = ("ingest", "analytics", "vision", "geo_api", "web_map")
# Methods that send SQL when called on a connection, cursor, session or engine.
EXECUTING = {"execute", "executemany", "exec_driver_sql"}
# Calls that send SQL when their receiver is a database connection (named like one).
CONNECTION_ONLY = {"scalar", "scalars", "copy"}
CONNECTION_NAMES = ("conn", "connection", "cur", "cursor", "session", "engine", "raw")
# SQL-building imports that only storage code needs.
SQL_IMPORTS = {("sqlalchemy", "text"), ("sqlalchemy.sql", "text"), ("psycopg", "sql")}


def _receiver_name(node: ast.expr) -> str:
    while isinstance(node, ast.Attribute):
        node = node.value
    if isinstance(node, ast.Call):
        return _receiver_name(node.func)
    return node.id if isinstance(node, ast.Name) else ""


def sql_sites(path: Path) -> list[str]:
    """`file:line: what` for every SQL execution or SQL-building import in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(ROOT)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (node.module, alias.name) in SQL_IMPORTS:
                    found.append(f"{rel}:{node.lineno}: imports {node.module}.{alias.name}")
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name = node.func.attr
        receiver = _receiver_name(node.func.value).lower()
        if name in EXECUTING or (
            name in CONNECTION_ONLY and any(n in receiver for n in CONNECTION_NAMES)
        ):
            found.append(f"{rel}:{node.lineno}: .{name}() on {receiver or 'an expression'}")
    return found


def test_no_sql_outside_layers() -> None:
    """Every database statement lives in layers/; the other packages call its functions."""
    sites = [
        site
        for package in NOT_STORAGE
        for path in sorted((ROOT / package).rglob("*.py"))
        if "node_modules" not in path.parts
        for site in sql_sites(path)
    ]
    assert sites == [], "SQL outside layers/ (move it into a layers function):\n" + "\n".join(sites)


def test_the_scan_sees_sql() -> None:
    """The scan flags the forms it is meant to catch (and leaves ordinary code alone)."""
    sample = ROOT / "tests" / "_arch_sample.py"
    sample.write_text(
        "from sqlalchemy import text\n"
        "def f(conn, engine, cur, frame):\n"
        "    conn.execute(text('SELECT 1'))\n"
        "    engine.connect().exec_driver_sql('SELECT 1')\n"
        "    cur.copy('COPY t FROM STDIN')\n"
        "    conn.scalar('x')\n"
        "    frame.copy()\n",
        encoding="utf-8",
    )
    try:
        sites = sql_sites(sample)
    finally:
        sample.unlink()
    assert len(sites) == 5, sites


# Calls that open a database connection or pool; only layers/db.py may make them.
CONNECTING = {"connect", "create_engine", "AsyncConnectionPool", "ConnectionPool"}
CONNECTING_RECEIVERS = {"psycopg", "AsyncConnection", "Connection", ""}
CONNECTION_BUILDER = ROOT / "layers" / "db.py"


def connection_sites(path: Path) -> list[str]:
    """`file:line: what` for every place in one file that opens a connection or a pool."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(ROOT)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in CONNECTING - {"connect"}:
            found.append(f"{rel}:{node.lineno}: {func.id}()")
        elif isinstance(func, ast.Attribute) and func.attr in CONNECTING:
            receiver = func.value
            name = (
                receiver.attr if isinstance(receiver, ast.Attribute) else _receiver_name(receiver)
            )
            if name in CONNECTING_RECEIVERS - {""}:
                found.append(f"{rel}:{node.lineno}: {name}.{func.attr}()")
    return found


def test_connections_are_built_in_one_place() -> None:
    """Engines, pools and psycopg connections are all made by layers.db from Settings."""
    sites = [
        site
        for package in (*NOT_STORAGE, "layers")
        for path in sorted((ROOT / package).rglob("*.py"))
        if "node_modules" not in path.parts and path != CONNECTION_BUILDER
        for site in connection_sites(path)
    ]
    assert sites == [], "connections built outside layers/db.py:\n" + "\n".join(sites)


def test_the_connection_scan_sees_connects() -> None:
    """The scan flags each way of opening a connection."""
    sample = ROOT / "tests" / "_arch_conn_sample.py"
    sample.write_text(
        "import psycopg\n"
        "from sqlalchemy import create_engine\n"
        "from psycopg_pool import AsyncConnectionPool\n"
        "async def f(url):\n"
        "    psycopg.connect(url)\n"
        "    await psycopg.AsyncConnection.connect(url)\n"
        "    create_engine(url)\n"
        "    AsyncConnectionPool(url)\n"
        "    engine.connect()\n",
        encoding="utf-8",
    )
    try:
        sites = connection_sites(sample)
    finally:
        sample.unlink()
    assert len(sites) == 4, sites


def test_import_contracts() -> None:
    """`lint-imports` keeps every contract of pyproject.toml."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports"
    )
    assert exe, "import-linter is not installed (pip install -e '.[dev]')"
    res = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
