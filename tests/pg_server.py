"""A throw-away PostgreSQL server for tests and benchmarks (Debian's `postgresql` package).

`TempPostgres` runs initdb into a fresh temporary directory, starts the server on a Unix
socket in that directory only (no TCP port, so parallel sessions never collide), and
removes everything on exit. As root it runs the server as the `postgres` user (PostgreSQL
refuses to run as root). `make postgres` installs the package when it is missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def pg_bin() -> Path | None:
    """Directory of the PostgreSQL server binaries, or None when not installed."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(versions[0]).parent if versions else None


def unavailable_reason() -> str | None:
    """Why a temporary server cannot be started here (None when it can)."""
    if pg_bin() is None:
        return "PostgreSQL server binaries not found (`make postgres` installs Debian's postgresql)"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server"
    try:
        import adbc_driver_postgresql  # noqa: F401
    except ImportError:
        return "adbc-driver-postgresql is not installed"
    return None


class TempPostgres:
    """Context manager: a running server; `url` connects to its database `nrrcast`."""

    def __init__(self, database: str = "nrrcast") -> None:
        self.database = database
        self.dir: Path | None = None
        self.url = ""

    def _run(self, *args: str) -> None:
        cmd = [str(pg_bin() / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            log = (self.dir / "server.log") if self.dir else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed: {proc.stderr.strip()}\n{tail}")

    def __enter__(self) -> TempPostgres:
        self.dir = Path(tempfile.mkdtemp(prefix="nrrcast-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        options = f"-k {self.dir} -c listen_addresses='' -p 5432 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(data), "-o", options, "-l", str(self.dir / "server.log"),
            "-w", "-t", "60", "start",
        )  # fmt: skip
        admin = f"postgresql://postgres@/postgres?host={self.dir}&port=5432"
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(admin, autocommit=True) as con, con.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.database}"')
        self.url = f"postgresql://postgres@/{self.database}?host={self.dir}&port=5432"
        return self

    def server_cpu_seconds(self) -> float | None:
        """CPU seconds used so far by the server: the postmaster and its exited children
        (a backend is reaped when its connection closes). None when /proc is not readable."""
        try:
            pid = int((self.dir / "data" / "postmaster.pid").read_text().split()[0])
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError, TypeError):
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return sum(int(f) for f in fields[11:15]) / ticks  # utime stime cutime cstime

    def __exit__(self, *exc: object) -> None:
        if self.dir is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def load_tables(url: str, raw_dir: Path, *, schema: str = "public") -> dict[str, int]:
    """Copy every contract table of a Parquet world into `schema` (COPY via ADBC)."""
    import adbc_driver_postgresql.dbapi as pg

    from features.contract import TABLES

    counts = {}
    with pg.connect(url) as con, con.cursor() as cur:
        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        for table in TABLES:
            files = sorted(raw_dir.glob(f"{table}.parquet")) or sorted(
                (raw_dir / table).rglob("*.parquet")
            )
            if not files:
                continue
            data = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
            cur.adbc_ingest(table, data, mode="replace", db_schema_name=schema)
            counts[table] = data.num_rows
        con.commit()
    return counts


@pytest.fixture(scope="session")
def pg_url():
    """URL of a fresh database on a temporary PostgreSQL server (one per session and
    importing module), skipped with the reason when no server can be started here."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    with TempPostgres() as server:
        yield server.url
