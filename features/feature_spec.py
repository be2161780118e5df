"""The shape of a feature registry entry (`features.catalog`) and how its values read.

`FeatureSpec` is one feature: its SQL, the aggregates it adds to the builders' tables
(`Measure`), its source columns and optional data (`OptionalData`), and how a reason shows
it. `FeatureSpec.sentence(value)` renders the template with these placeholders:

- ``{value}``: the value formatted for its unit ("12 users", "35%", "$48k", "3.4 of 5");
- ``{change}``: for changes, "rose 35%" / "fell 35%" / "did not change"
  (unit ``pct_change``), or "rose by 3 features" (units ``delta_<noun>``);
- ``{pct}``: the absolute value as a percentage ("35%").

Units: ``share`` (a fraction rendered as %), ``pct_change`` (relative change, -0.35 =
35% lower), ``usd``, ``ratio``, ``csat`` (1-5), ``level`` (maturity 0/1/2), or a plural
noun for counts ("days", "users", "events", ...), or ``delta_<noun>`` for differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from features.names import STAGES

_SINGULAR = {
    "days": "day",
    "events": "event",
    "users": "user",
    "features": "feature",
    "tickets": "ticket",
    "runs": "run",
    "months": "month",
    "departments": "department",
    "admins": "admin",
    "seats": "seat",
    "units": "unit",
    "logins": "login",
}


def _num(x: float) -> str:
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.1f}" if abs(x) >= 10 else f"{x:,.2f}".rstrip("0").rstrip(".")


def _count(x: float, noun: str) -> str:
    word = _SINGULAR.get(noun, noun) if abs(x) == 1 else noun
    return f"{_num(x)} {word}"


def _usd(x: float) -> str:
    sign = "-" if x < 0 else ""
    a = abs(x)
    if a >= 1e6:
        return f"{sign}${a / 1e6:.1f}M"
    if a >= 1e4:
        return f"{sign}${a / 1e3:.0f}k"
    return f"{sign}${a:,.0f}"


def _pct(x: float) -> str:
    p = abs(x) * 100
    return f"{p:.0f}%" if p >= 1 or p == 0 else f"{p:.1f}%"


def round_as_shown(x: np.ndarray, unit: str) -> np.ndarray:
    """Values rounded to the precision their text shows, so fewer distinct ones are formatted.

    Parameters
    ----------
    x : float ndarray.
    unit : a `FeatureSpec` unit.

    Returns
    -------
    float ndarray: values that read the same in `FeatureSpec.format_value` may merge,
    values that read differently never do.

    Examples
    --------
    >>> round_as_shown(np.array([48_213.0, 2_213_000.0]), "usd").tolist()
    [48000.0, 2200000.0]
    """
    if unit in ("share", "pct_change"):
        return np.round(x, 3)  # shown as whole percent (0.1% below 1%)
    if unit == "usd":
        a = np.abs(x)
        return np.where(a >= 1e6, np.round(x, -5), np.where(a >= 1e4, np.round(x, -3), np.round(x)))
    if unit == "csat":
        return np.round(x, 1)
    return np.where(np.abs(x) >= 10, np.round(x, 1), np.round(x, 2))  # counts, ratios


@dataclass(frozen=True)
class OptionalData:
    """Data some features need and a book may lack.

    Attributes
    ----------
    missing : what is missing when it is absent (logged with the features left out).
    first : SQL scalar subquery of when it first appears; for `static` data the count of
        its values (undated data, e.g. plans and account enrichment, is there at every
        as_of or at none).
    static : see `first`.
    scan : attribute of `features.activity.FeatureIndex` holding when the event scan
        first saw it, instead of `first`.
    """

    missing: str
    first: str = ""
    static: bool = False
    scan: str = ""


@dataclass(frozen=True)
class Measure:
    """An aggregate a builder computes per account and as_of, read by feature expressions.

    Attributes
    ----------
    table : the builder's table (a key of `ALIASES`), e.g. ``tickets_asof``.
    name : its column in that table.
    sql : select expression over the builder's rows (their aliases are the builder's);
        ``{fields}`` are filled by the builder (mask words, configured thresholds).
    per_step : the expression is a term per ARR history step ``{k}`` (previous step
        ``{prev}``), summed over the configured steps.
    """

    table: str
    name: str
    sql: str
    per_step: bool = False

    def render(self, fields: dict[str, object]) -> str:
        """The select expression with the builder's `fields` filled in.

        Parameters
        ----------
        fields : values of the ``{fields}`` of `sql` (``steps`` for a per-step measure).

        Returns
        -------
        str, SQL expression (without alias).

        Examples
        --------
        >>> Measure("arr_hist", "n", "CASE WHEN arr_k{k} > arr_k{prev} THEN 1 ELSE 0 END",
        ...         per_step=True).render({"steps": 2})
        'CASE WHEN arr_k1 > arr_k0 THEN 1 ELSE 0 END + CASE WHEN arr_k2 > arr_k1 THEN 1 ELSE 0 END'
        """
        if not self.per_step:
            return self.sql.format(**fields)
        steps = int(fields["steps"])  # type: ignore[call-overload]
        return " + ".join(self.sql.format(k=k, prev=k - 1, **fields) for k in range(1, steps + 1))


def is_change_unit(unit: str) -> bool:
    """Whether values of `unit` are changes (compared with 0, not with a level).

    Parameters
    ----------
    unit : a `FeatureSpec` unit.

    Returns
    -------
    bool, True for ``pct_change`` and ``delta_<noun>``.
    """
    return unit == "pct_change" or unit.startswith("delta_")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: how it is computed, what it measures and how to say it in a sentence.

    Attributes
    ----------
    name : column name in the feature table.
    description : plain-language definition (window, numerator, denominator).
    unit : see module docstring.
    template : sentence template (placeholders ``{value}``, ``{change}``, ``{pct}``).
    group : one of `GROUPS` (activity, adoption, seats_usage, agents, support, contract,
        opportunity, maturity).
    healthier : +1 higher is healthier for the customer, -1 lower is, 0 neither (context
        such as size or the renewal date). A reason is "working well" only when its value
        is on the healthy side of its comparisons (`models.reason_context`).
    sql : select expression over the final join (aliases `ALIASES`); "" when the feature
        is computed after the SQL.
    measures : aggregates the feature adds to the builders' tables.
    needs : source columns it reads (``table.column`` of the input contract).
    optional : keys of `OPTIONAL_DATA` without which the feature is NaN.
    gap : what a missing value means ("No CSAT recorded ..."); "" = the group's text.
    """

    name: str
    description: str
    unit: str
    template: str
    group: str
    healthier: int = 0
    sql: str = ""
    measures: tuple[Measure, ...] = ()
    needs: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    gap: str = ""

    @property
    def label(self) -> str:
        """Short name: the description up to its colon ("Active user share")."""
        return self.description.split(":")[0].rstrip(".")

    @property
    def is_change(self) -> bool:
        """Whether the value is a change (compared with 0), see `is_change_unit`."""
        return is_change_unit(self.unit)

    def format_value(self, value: float) -> str:
        """The value in words for its unit ("12 users", "35%", "$48k").

        Parameters
        ----------
        value : the feature value (NaN/None renders as "unknown").

        Returns
        -------
        str
        """
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "unknown"
        x = float(value)
        if self.unit == "share":
            return _pct(x)
        if self.unit == "pct_change":
            return ("+" if x > 0 else "-" if x < 0 else "") + _pct(x)
        if self.unit == "usd":
            return _usd(x)
        if self.unit == "ratio":
            return _num(round(x, 2))
        if self.unit == "csat":
            return f"{x:.1f} out of 5"
        if self.unit == "level":
            i = int(round(x))
            return STAGES[i] if 0 <= i < len(STAGES) else _num(x)
        if self.unit.startswith("delta_"):
            return ("+" if x > 0 else "") + _count(x, self.unit[len("delta_") :])
        return _count(x, self.unit)

    def _change(self, x: float) -> str:
        if x == 0:
            return "did not change"
        verb = "rose" if x > 0 else "fell"
        if self.unit.startswith("delta_"):
            return f"{verb} by {_count(abs(x), self.unit[len('delta_') :])}"
        return f"{verb} {_pct(x)}"

    def sentence(self, value: float | None, contribution: float | None = None) -> str:
        """A plain-language sentence about `value`, e.g. "Active users fell 35% ...".

        Parameters
        ----------
        value : the feature value (NaN/None renders as "not available").
        contribution : optional model contribution (e.g. SHAP, log-odds); when given,
            the sentence ends with whether it pushes the prediction up or down.

        Returns
        -------
        str

        Examples
        --------
        >>> from features.catalog import CATALOG
        >>> CATALOG["active_users_trend_30d"].sentence(-0.35)
        'Active users fell 35% in the last 30 days compared with the 30 days before'
        """
        if value is None or (isinstance(value, float) and math.isnan(value)):
            text = f"{self.label}: not available"
        else:
            x = float(value)
            text = self.template.format(
                value=self.format_value(x), change=self._change(x), pct=_pct(x)
            )
            text = text[:1].upper() + text[1:]
        if contribution is not None and not math.isnan(contribution) and contribution != 0:
            text += (
                " (pushes the prediction up)"
                if contribution > 0
                else " (pushes the prediction down)"
            )
        return text
