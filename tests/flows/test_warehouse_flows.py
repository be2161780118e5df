"""The scheduled flows on a warehouse: train from PostgreSQL, score from it into it.

A real PostgreSQL server (tests/pg_server.py) holds the contract tables in schema `crm`
and receives the scores; the flows run under the session's Prefect harness, whose API
then holds the flow runs' logs, project lines included.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import mlflow
import pg_server
import pytest
import yaml
from pg_server import load_tables

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prefect")]
pg_url = pg_server.pg_url  # session fixture: a temporary PostgreSQL server


def _rows(url: str, sql: str) -> list[tuple]:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(url) as con, con.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def _flow_logs(flow_name: str, since: float) -> list:
    """Log records of the runs of flow `flow_name` started after `since` (epoch s)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))
        ids = [r.id for r in runs if r.start_time and r.start_time.timestamp() >= since]
        for _ in range(20):
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)))
            if any(log.name.startswith("nrrcast.scores") for log in logs):
                break
            time.sleep(0.5)
    return sorted(logs, key=lambda log: log.timestamp)


@pytest.fixture(scope="module")
def warehouse(pg_url, tmp_path_factory, _mlflow_template, prefect_harness):
    """A simulated world in PostgreSQL, a config reading from it and writing scores to it,
    and one training run from it."""
    from flows.deployments import monthly_retraining
    from simulator import simulate
    from simulator.config import SimConfig

    tmp = tmp_path_factory.mktemp("warehouse_flows")
    world = tmp / "raw"
    simulate(SimConfig(accounts=300, months=16, seed=4), world, progress=False)
    load_tables(pg_url, world, schema="crm")
    data_end = json.loads((world / "manifest.json").read_text())["data_end"]
    _rows(pg_url, "SELECT 1")
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(pg_url) as con, con.cursor() as cur:
        cur.execute("CREATE TABLE crm.nrrcast_manifest (data_end date)")
        cur.execute(f"INSERT INTO crm.nrrcast_manifest VALUES ('{data_end}')")
        con.commit()
    (tmp / "mlruns").mkdir()
    shutil.copy(_mlflow_template, tmp / "mlruns" / "mlflow.db")
    # the server trusts local connections: the password only checks that it never shows
    source = f"{pg_url.replace('postgres@', 'postgres:s3cret@')}&schema=crm"
    cfg = {
        "paths": {
            "raw": source,
            "features": str(tmp / "features"),
            "scores": str(tmp / "scores"),
            "quarantine": str(tmp / "quarantine"),
            "reports": str(tmp / "reports"),
            "mlflow_uri": f"sqlite:///{tmp / 'mlruns' / 'mlflow.db'}",
            "mlflow_artifacts": str(tmp / "mlruns" / "artifacts"),
            "thresholds_dir": str(tmp / "thresholds"),
        },
        "scoring": {"sql_url": pg_url, "report": False},
        "models": {
            "split": {"valid_dates": 1, "calib_dates": 2, "test_dates": 2, "min_train_dates": 2},
            "lgbm": {"n_estimators": 150, "early_stopping_rounds": 20},  # the source is the point
        },
        "orchestration": {"store_name": "warehouse-test"},
    }
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    trained = monthly_retraining(config_path=str(config))
    return {"tmp": tmp, "config": str(config), "source": source, "cfg": cfg, "train": trained}


def test_training_reads_the_contract_from_postgresql(warehouse):
    mlflow.set_tracking_uri(warehouse["cfg"]["paths"]["mlflow_uri"])
    run = mlflow.get_run(warehouse["train"]["run_id"])
    assert run.data.tags["source"].startswith("postgresql://postgres:***@")
    assert run.data.metrics["panel.rows"] > 0


def test_weekly_scoring_writes_postgresql_then_refuses_the_same_export(warehouse, pg_url):
    from flows.deployments import weekly_scoring

    started = time.time()
    scored = weekly_scoring(config_path=warehouse["config"])
    in_db = _rows(pg_url, "SELECT as_of, count(*) FROM public.scores GROUP BY 1")
    assert len(in_db) == 1 and in_db[0][1] == scored["accounts"] > 0
    assert str(in_db[0][0]) == scored["as_of"]

    logs = _flow_logs("nrrcast-score", started)
    project = [log for log in logs if log.name.startswith("nrrcast")]
    print("\n".join(f"{log.timestamp:%H:%M:%S} {log.name}: {log.message[:160]}" for log in logs))
    assert any(log.name == "nrrcast.flows" and "validation of" in log.message for log in project)
    assert any("wrote" in log.message and "postgresql://" in log.message for log in project)
    assert not any("s3cret" in log.message for log in logs)

    # the export was not refreshed: the scheduled run refuses and writes nothing
    state = weekly_scoring(config_path=warehouse["config"], return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="not after the end of the data scored by run"):
        state.result()
    assert _rows(pg_url, "SELECT count(*) FROM public.scores") == [(scored["accounts"],)]
    assert len(list(Path(warehouse["tmp"], "scores").glob("as_of=*"))) == 1
