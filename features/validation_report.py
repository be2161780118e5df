"""What validation found: problems by table and column, row counts, and the stop rule."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from features import errors

Action = Literal["error", "quarantined", "warning", "info"]
ACTIONS: tuple[Action, ...] = ("error", "quarantined", "warning", "info")


@dataclass(frozen=True)
class Problem:
    """One finding: `rows` rows of `table` (column `column`, None for the whole table).

    `action` is what was done: 'error' (the source cannot be used as is), 'quarantined'
    (the rows were set aside with the reason), 'warning' (kept, possibly with the value set
    to NULL as the text says) or 'info' (nothing wrong; e.g. an optional column is absent).
    """

    table: str
    column: str | None
    problem: str
    rows: int
    action: Action


@dataclass(frozen=True)
class TableCounts:
    """Rows read from the source, set aside, and exposed in the clean relation."""

    read: int
    quarantined: int
    clean: int


class ContractError(errors.ContractError):
    """The source breaks the input contract; `report` holds every finding."""

    def __init__(self, message: str, report: ValidationReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ValidationReport:
    """Findings and row counts of one validation run.

    Attributes
    ----------
    problems : every finding, in contract table order.
    counts : per contract table, rows read / quarantined / clean (read = quarantined + clean).
    now : the extraction time the source was checked against (timestamps at or after it
        are "in the future").
    data_end : the data's end (exclusive) decided by `features.validate.validate_until`:
        the manifest's ``data_end``, else the ``--data-end`` option, else the day after the
        latest timestamp seen (before `now`); None when nothing decided it.
    data_end_from : "manifest", "option", "data" or None.
    quarantine_files : table -> Parquet file of the rows set aside (tables with any).
    contract_version : the contract the source was checked against.
    """

    problems: list[Problem]
    counts: dict[str, TableCounts]
    now: datetime
    data_end: date | None = None
    data_end_from: Literal["manifest", "option", "data"] | None = None
    quarantine_files: dict[str, Path] = field(default_factory=dict)
    contract_version: str = "v1"

    @property
    def ok(self) -> bool:
        """True when there is no error (quarantined rows and warnings do not block)."""
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        """The problems whose action is 'error'."""
        return [p for p in self.problems if p.action == "error"]

    def by_action(self, action: Action) -> list[Problem]:
        """The problems with the given action.

        Parameters
        ----------
        action : {"error", "quarantined", "warning", "info"}
            What was done about them.

        Returns
        -------
        list of Problem
            In report order.
        """
        return [p for p in self.problems if p.action == action]

    def raise_if_failed(self) -> None:
        """Raise ContractError listing every error by table, column and row count.

        Raises
        ------
        ContractError
            When `ok` is false; it carries this report.
        """
        if self.ok:
            return
        lines = [
            f"  {_where(p)}: {p.problem} ({p.rows:,} row{'s' if p.rows != 1 else ''})"
            for p in self.errors
        ]
        n = len(lines)
        raise ContractError(
            f"the source breaks input contract {self.contract_version} "
            f"({n} error{'s' if n != 1 else ''}):\n" + "\n".join(lines),
            self,
        )

    def to_frame(self) -> pd.DataFrame:
        """Problems as a DataFrame with columns table, column, problem, rows, action.

        Returns
        -------
        pandas.DataFrame
            One row per problem (``rows`` int64), empty with those columns when there is none.
        """
        cols = ["table", "column", "problem", "rows", "action"]
        return pd.DataFrame([asdict(p) for p in self.problems], columns=cols).astype(
            {"rows": "int64"}
        )

    def counts_frame(self) -> pd.DataFrame:
        """Row counts as a DataFrame indexed by table (read, quarantined, clean).

        Returns
        -------
        pandas.DataFrame
            int64 columns read, quarantined and clean; index named ``table``.
        """
        frame = pd.DataFrame(
            [asdict(c) for c in self.counts.values()], index=list(self.counts)
        ).astype("int64")
        frame.index.name = "table"
        return frame

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for run tracking): counts, problems, dates.

        Returns
        -------
        dict
            Dates as ISO strings, paths as strings, counts and problems as plain dicts.
        """
        return {
            "contract_version": self.contract_version,
            "ok": self.ok,
            "now": self.now.isoformat(),
            "data_end": self.data_end.isoformat() if self.data_end else None,
            "data_end_from": self.data_end_from,
            "counts": {t: asdict(c) for t, c in self.counts.items()},
            "problems": [asdict(p) for p in self.problems],
            "quarantine_files": {t: str(p) for t, p in self.quarantine_files.items()},
        }

    def summary(self) -> str:
        """A readable text table: row counts per table, then problems by severity.

        Returns
        -------
        str
            A header line, the counts table, the problems (errors first) and the quarantine
            files, separated by blank lines.
        """
        head = (
            f"input contract {self.contract_version}: {'OK' if self.ok else 'FAILED'}"
            f" ({len(self.errors)} errors, {len(self.by_action('quarantined'))} quarantine "
            f"reasons, {len(self.by_action('warning'))} warnings); now={self.now:%Y-%m-%d %H:%M:%S}"
            f", data_end={self.data_end} ({self.data_end_from or 'unknown'})"
        )
        count_rows = [
            [t, f"{c.read:,}", f"{c.quarantined:,}", f"{c.clean:,}"] for t, c in self.counts.items()
        ]
        parts = [head, "", _text_table(["table", "read", "quarantined", "clean"], count_rows)]
        order = {a: i for i, a in enumerate(ACTIONS)}
        problems = sorted(self.problems, key=lambda p: order[p.action])
        if problems:
            rows = [[p.action, _where(p), f"{p.rows:,}", p.problem] for p in problems]
            parts += ["", _text_table(["action", "table.column", "rows", "problem"], rows)]
        if self.quarantine_files:
            parts += ["", "quarantined rows written to:"]
            parts += [f"  {t}: {p}" for t, p in self.quarantine_files.items()]
        return "\n".join(parts)


def _where(p: Problem) -> str:
    return f"{p.table}.{p.column}" if p.column else p.table


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    numeric = [all(_is_number(r[i]) for r in rows) and rows for i in range(len(header))]
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        out = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(out).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def _is_number(text: str) -> bool:
    return text.replace(",", "").isdigit()
