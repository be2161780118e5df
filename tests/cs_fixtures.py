"""Report inputs with people, plays, exports and drift (on top of report_fixtures)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from report_fixtures import make_inputs

from evaluation.actions import action_table, weekly_flags
from evaluation.report import ReportInputs
from models.segment import SegmentConfig

HOSTILE_CSM = "=HYPERLINK(\"http://x\")<script>alert('csm')</script>"


def make_csms(scores: pd.DataFrame) -> pd.DataFrame:
    """A csms table naming every CSM of the scores; the first one has a hostile name."""
    ids = sorted(scores["csm_id"].dropna().astype(str).unique())
    names = [HOSTILE_CSM] + [f"CSM {i:02d} Name" for i in range(1, len(ids))]
    return pd.DataFrame(
        {
            "csm_id": ids,
            "name": names,
            "email": [f"csm{i}@example.com" for i in range(len(ids))],
            "capacity": 25,
        }
    )


def make_drift() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "column": ["seat_utilization_30d", "tickets_30d"],
            "kind": ["numeric", "numeric"],
            "psi": [0.41, 0.05],
            "status": ["alert", "ok"],
            "bins": [10, 10],
            "n_reference": [1000, 1000],
            "n_current": [300, 300],
            "null_share_reference": [0.0, 0.0],
            "null_share_current": [0.0, 0.0],
            "mean_reference": [0.52, 1.1],
            "mean_current": [0.71, 1.2],
        }
    )


def make_cs_inputs(n: int = 300) -> tuple[ReportInputs, pd.DataFrame]:
    """Report inputs with actions, flags and drift; and the csms table used."""
    base = make_inputs(n)
    scores = base.scores.copy()
    scores["data_gaps"] = ""
    scores.loc[scores.index[::7], "data_gaps"] = "No CSAT recorded in the last 90 days"
    csms = make_csms(scores)
    actions = action_table(
        scores,
        csms=csms,
        playbook_details=SegmentConfig().playbook_details,
        as_of=pd.Timestamp(scores["as_of"].iloc[0]).date(),
    )
    flags = weekly_flags(actions, max_per_csm=20)
    return (
        replace(base, scores=scores, actions=actions, flags=flags, drift=make_drift()),
        csms,
    )
