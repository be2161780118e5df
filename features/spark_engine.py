"""Run nrrcast's recorded SQL (validation and features) on Apache Spark.

`SparkConnection` has the small part of DuckDB's connection API that nrrcast uses
(``execute(...).fetchall() / fetchone() / df()``, ``close()``), so `features.sources`,
`features.validate` and `features.build` run unchanged on a SparkSession: each
statement is rewritten by `features.spark_dialect` (the one documented rewrite layer)
and executed with ``spark.sql``. The source's files are registered as temporary views
with Spark's own readers.

Intermediate tables (``CREATE [TEMP] TABLE ... AS``) are cached DataFrames (memory,
spilling to the executors' local disk) behind temporary views, computed when created as
DuckDB does; ``INSERT INTO`` caches its rows as one more part of the table. Writing each
one as a Parquet table and reading it back, as a first version did, cost a write, a
commit and a listing per statement: most of Spark's time at 1M-10M events. Cached
parts are dropped (unpersisted) with their table and by `close`; a lost executor
recomputes its partitions from the plan, like any cached DataFrame.

Two session settings are required for DuckDB's semantics and are set on the session for
the connection's lifetime (and restored by `close`): ``spark.sql.session.timeZone=UTC``
(timestamps are naive UTC in the contract) and ``spark.sql.timestampType=TIMESTAMP_NTZ``
(``TIMESTAMP`` means DuckDB's naive timestamp). ANSI mode stays as the session has it
(on by default in Spark 4); the SQL guards its divisions with NULLIF.

pyspark is an optional dependency (``pip install nrrcast[spark]``); it is imported when
a session is made.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
import warnings
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from features.spark_dialect import Command, to_spark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("nrrcast.features")

REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
}
"""Session settings the DuckDB semantics need (set per connection, restored on close)."""

DEFAULT_CONF = {
    **REQUIRED_CONF,
    "spark.ui.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}
"""Settings of a session nrrcast starts itself (`spark_session`)."""

LOCAL_CONF = {
    # the throughput collector: G1's concurrent threads cost 10-20% CPU on a short batch
    "spark.driver.extraJavaOptions": "-XX:+UseParallelGC",
    # cached intermediate tables uncompressed: less CPU, memory is the driver's own here
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
}
"""Extra settings of a local-mode session (`spark_session` with a ``local`` master);
with them and 2 shuffle partitions per core, features over 1M events took 55 instead
of 76 CPU seconds in one comparison at a load of about 5 (docs/cluster.md)."""


def _local_cores(master: str) -> int:
    """Worker threads of a ``local``, ``local[n]`` or ``local[*]`` master."""
    inside = master[len("local[") : -1] if master.startswith("local[") else "1"
    inside = inside.split(",")[0]  # local[n, maxFailures]
    return (os.cpu_count() or 1) if inside == "*" else int(inside)


def java_problem() -> str | None:
    """What is missing to run Spark here (no Java, or pyspark absent), or None.

    Returns
    -------
    str or None
        One line saying what to install, or None when Spark can run.
    """
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed: pip install 'nrrcast[spark]' (or make setup)"
    java = shutil.which("java")
    home = os.environ.get("JAVA_HOME")
    if java is None and not (home and Path(home, "bin", "java").exists()):
        return (
            "Java is not installed: Spark needs a Java 17 or 21 runtime "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless; or set JAVA_HOME)"
        )
    return None


def spark_session(
    master: str | None = "local[*]",
    *,
    app_name: str = "nrrcast",
    conf: dict[str, str] | None = None,
) -> SparkSession:
    """Start (or get) a SparkSession with the settings nrrcast needs.

    Parameters
    ----------
    master : Spark master URL: ``local[*]`` (all cores of this machine), ``local[2]``,
        ``spark://host:7077``, ``yarn``, ``k8s://...``; None leaves it to spark-submit or
        to the session already running (Databricks). An active session is reused as is.
    app_name : the application's name in the cluster's UI.
    conf : extra settings (e.g. ``{"spark.driver.memory": "8g"}``), applied last. A local
        master also gets `LOCAL_CONF` and ``spark.sql.shuffle.partitions`` = 2 per core
        (Spark's 200 are made for clusters: each is a task and a file per map task).

    Returns
    -------
    SparkSession
        Workers run this interpreter (``PYSPARK_PYTHON`` is set to it unless already set).
    """
    problem = java_problem()
    if problem is not None:
        raise RuntimeError(f"Spark engine unavailable: {problem}")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    settings = dict(DEFAULT_CONF)
    if master and master.startswith("local"):
        settings.update(LOCAL_CONF)
        settings["spark.sql.shuffle.partitions"] = str(2 * _local_cores(master))
    for key, value in {**settings, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


_SPARK_TO_DUCKDB = {
    "StringType": "VARCHAR",
    "CharType": "VARCHAR",
    "VarcharType": "VARCHAR",
    "LongType": "BIGINT",
    "IntegerType": "INTEGER",
    "ShortType": "SMALLINT",
    "ByteType": "TINYINT",
    "DoubleType": "DOUBLE",
    "FloatType": "FLOAT",
    "BooleanType": "BOOLEAN",
    "DateType": "DATE",
    "TimestampNTZType": "TIMESTAMP",
    "TimestampType": "TIMESTAMP WITH TIME ZONE",
    "NullType": '"NULL"',
    "BinaryType": "BLOB",
}


def duckdb_type(spark_type: Any) -> str:
    """The DuckDB name of a Spark data type (what the contract's casts expect).

    Parameters
    ----------
    spark_type : a `pyspark.sql.types.DataType`.

    Returns
    -------
    str
        E.g. ``VARCHAR``, ``BIGINT``, ``TIMESTAMP``, ``DECIMAL(38,10)``.
    """
    name = type(spark_type).__name__
    if name == "DecimalType":
        return f"DECIMAL({spark_type.precision},{spark_type.scale})"
    return _SPARK_TO_DUCKDB.get(name, spark_type.simpleString().upper())


class SparkResult:
    """The rows of one statement, fetched like a DuckDB result."""

    def __init__(self, frame: DataFrame | None = None, rows: list[tuple] | None = None) -> None:
        self._frame = frame
        self._rows = rows

    def fetchall(self) -> list[tuple]:
        """All rows, as DuckDB's ``fetchall`` gives them.

        Returns
        -------
        list of tuple
            The rows (collected from Spark once, then kept).
        """
        if self._rows is None:
            self._rows = [] if self._frame is None else [tuple(r) for r in self._frame.collect()]
        return self._rows

    def fetchone(self) -> tuple | None:
        """The first row, as DuckDB's ``fetchone`` gives it.

        Returns
        -------
        tuple or None
            The first row; None when there is none.
        """
        rows = self.fetchall()
        return rows[0] if rows else None

    def df(self) -> pd.DataFrame:
        """The result as a pandas DataFrame, as DuckDB's ``df`` gives it.

        Returns
        -------
        DataFrame
            One column per result column.
        """
        if self._frame is None:
            return pd.DataFrame(self.fetchall())
        with warnings.catch_warnings():  # pyspark 4.3 warns about pandas 3 on every call
            warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
            warnings.filterwarnings("ignore", "The copy keyword is deprecated")
            return self._frame.toPandas()


def _bind(sql: str, parameters: Any) -> str:
    """DuckDB's ``?`` placeholders replaced by SQL literals (Spark SQL text has none)."""
    from features.sqlrun import lit

    values = list(parameters)
    parts = sql.split("?")
    if len(parts) != len(values) + 1 or "'" in sql:
        raise NotImplementedError(f"cannot bind {len(values)} parameter(s) into: {sql[:200]}")
    out = parts[0]
    for value, part in zip(values, parts[1:], strict=True):
        out += lit(value) + part
    return out


class SparkConnection:
    """A DuckDB-connection look-alike over a SparkSession (see the module docstring).

    Parameters
    ----------
    spark : the session to run on (the user's, or from `spark_session`).
    location : directory of the private database holding intermediate tables; a
        temporary directory for a local master, the session's warehouse otherwise (on a
        cluster, pass a shared path such as ``s3://bucket/tmp/nrrcast``).

    Attributes
    ----------
    statements : every statement executed, as (DuckDB SQL, [Spark SQL ...]) pairs.
    seconds : wall seconds of each statement (queries are lazy: their rows are fetched
        later, so only DDL, table creation and actions are timed here).
    """

    def __init__(self, spark: SparkSession, *, location: str | None = None) -> None:
        self.spark = spark
        self.statements: list[tuple[str, list[str]]] = []
        self.seconds: list[float] = []  # wall time of each statement (its DDL part)
        self.database = f"nrrcast_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self._own_dir: str | None = None
        if location is None and spark.sparkContext.master.startswith("local"):
            location = self._own_dir = tempfile.mkdtemp(prefix="nrrcast-spark-")
            # removed at exit even when the caller never closes the connection
            weakref.finalize(self, shutil.rmtree, location, ignore_errors=True)
        self._old_conf = {k: spark.conf.get(k, None) for k in REQUIRED_CONF}
        for key, value in REQUIRED_CONF.items():
            spark.conf.set(key, value)
        self._old_db = spark.catalog.currentDatabase()
        # a URL (hdfs://, s3a://) must keep its double slash: join as text, not as a Path
        where = f" LOCATION '{str(location).rstrip('/')}/{self.database}'" if location else ""
        spark.sql(f"CREATE DATABASE {self.database}{where}")
        spark.catalog.setCurrentDatabase(self.database)
        self._views: set[str] = set()
        self._parts: dict[str, list[DataFrame]] = {}  # cached parts of each table
        self._closed = False

    # ------------------------------------------------------------------ DuckDB API

    def execute(self, sql: str, parameters: object = None) -> SparkResult:
        """Run one DuckDB statement on Spark.

        Parameters
        ----------
        sql : one statement in DuckDB's dialect.
        parameters : values of its ``?`` placeholders, bound as SQL literals.

        Returns
        -------
        SparkResult
            Its rows (none for DDL and table creation).
        """
        if parameters:
            sql = _bind(sql, parameters)
        commands = to_spark(sql)
        self.statements.append((sql, [c.sql for c in commands if c.sql]))
        t0 = time.perf_counter()
        result = SparkResult(rows=[])
        for command in commands:
            result = self._run(command)
        self.seconds.append(time.perf_counter() - t0)
        return result

    def close(self) -> None:
        """Drop the private database and temporary views; restore the session settings."""
        if self._closed:
            return
        self._closed = True
        for name in list(self._parts):
            self._unpersist(name)
        for view in self._views:
            self.spark.catalog.dropTempView(view)
        self.spark.catalog.setCurrentDatabase(self._old_db)
        self.spark.sql(f"DROP DATABASE IF EXISTS {self.database} CASCADE")
        for key, value in self._old_conf.items():
            if value is None:
                self.spark.conf.unset(key)
            else:
                self.spark.conf.set(key, value)
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)

    def __enter__(self) -> SparkConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ commands

    def _run(self, c: Command) -> SparkResult:
        spark = self.spark
        if c.kind == "sql":
            frame = spark.sql(c.sql)
            if c.sql.lstrip().upper().startswith(("CREATE", "INSERT", "DROP")):
                if "TEMPORARY VIEW" in c.sql[:60].upper():
                    self._views.add(c.sql.split()[4])
                return SparkResult(rows=[])
            return SparkResult(frame)
        if c.kind == "table":
            self._drop(c.name)
            self._parts[c.name] = [self._cached(spark.sql(c.sql))]
            self._expose(c.name)
            return SparkResult(rows=[])
        if c.kind == "insert":
            if c.name not in self._parts:  # a table of the session's own
                spark.sql(f"INSERT INTO {c.name} {c.sql}")
                return SparkResult(rows=[])
            target = self._parts[c.name][0].schema
            frame = spark.sql(c.sql)
            if len(frame.columns) != len(target):
                raise ValueError(
                    f"INSERT INTO {c.name}: {len(frame.columns)} columns for "
                    f"{len(target)} in the table"
                )
            frame = frame.toDF(*target.names)  # by position, as SQL inserts
            frame = frame.select(
                *[frame[f"`{f.name}`"].cast(f.dataType).alias(f.name) for f in target]
            )
            self._parts[c.name].append(self._cached(frame))
            self._expose(c.name)
            return SparkResult(rows=[])
        if c.kind == "drop":
            self._drop(c.name)
            return SparkResult(rows=[])
        if c.kind == "describe":
            schema = spark.table(c.name).schema
            rows = [(f.name, duckdb_type(f.dataType), "YES", None, None, None) for f in schema]
            return SparkResult(rows=rows)
        if c.kind == "tables":  # SHOW TABLES lists temporary views too, without describing
            rows = spark.sql(f"SHOW TABLES IN {self.database}").collect()
            return SparkResult(rows=[(n,) for n in sorted({r.tableName for r in rows})])
        if c.kind == "read_files":
            return self._read_files(c)
        if c.kind == "copy":
            import pyarrow.parquet as pq

            pq.write_table(spark.sql(c.sql).toArrow(), c.path)
            return SparkResult(rows=[])
        if c.kind == "setting":
            return SparkResult(rows=[(None,)])
        if c.kind == "noop":
            return SparkResult(rows=[])
        raise ValueError(f"unknown Spark command {c.kind!r}")

    @staticmethod
    def _cached(frame: DataFrame) -> DataFrame:
        """`frame` cached and computed now (errors surface at the statement, as on DuckDB)."""
        frame = frame.persist()  # MEMORY_AND_DISK: spills rather than fails
        frame.count()  # builds the whole cache, every column
        return frame

    def _expose(self, name: str) -> None:
        """(Re)register table `name` as the temporary view over its cached parts."""
        parts = self._parts[name]
        frame = parts[0]
        for part in parts[1:]:
            frame = frame.union(part)
        frame.createOrReplaceTempView(name)
        self._views.add(name)

    def _unpersist(self, name: str) -> None:
        for part in self._parts.pop(name, []):
            part.unpersist()

    def _drop(self, name: str) -> None:
        """Drop relation `name`, whatever it is (cached table, view or table)."""
        self._unpersist(name)
        if self.spark.catalog.dropTempView(name):
            self._views.discard(name)
        self.spark.sql(f"DROP TABLE IF EXISTS {self.database}.{name}")

    def _read_files(self, c: Command) -> SparkResult:
        reader = self.spark.read
        files = list(c.files)
        if c.fmt == "parquet":
            if len(files) > 1 and c.options.get("union_by_name"):
                reader = reader.option("mergeSchema", "true")
            frame = reader.parquet(*files)
        elif c.fmt == "csv":
            # every column as text (no inferSchema), cast column by column in validation
            frame = reader.option("header", "true").csv(files)
        else:
            raise ValueError(f"cannot read {c.fmt!r} files on Spark")
        frame.createOrReplaceTempView(c.name)
        self._views.add(c.name)
        return SparkResult(rows=[])


def open_spark_source(source: str | Path, spark: SparkSession, *, location: str | None = None):
    """`features.sources.open_source` on Spark: a directory of Parquet or CSV files.

    Parameters
    ----------
    source : the directory (visible at the same path on the driver and the workers).
    spark : the session to run on.
    location : see `SparkConnection`.

    Returns
    -------
    features.sources.Source
        Whose ``con`` is a `SparkConnection` (close the source to drop its tables).
    """
    from features.sources import open_source

    path = Path(source).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"{path}: the Spark engine reads a directory of Parquet or CSV files; "
            "export a DuckDB file's tables to Parquet first (or use --engine duckdb)"
        )
    con = SparkConnection(spark, location=location)
    try:
        return open_source(path, con=con)  # type: ignore[arg-type]
    except BaseException:
        con.close()
        raise
