"""The lines of every loan of a fund for a period, computed by PostgreSQL in one statement.

The same rules as `interest.compute_line`, in integer arithmetic so that both give the same fen:
a rate of at most four decimals is R / 10⁴ percent, a share a / b is (a · B / b) / B with B the least
common multiple of every share denominator in the fund's policies, so a span's exact subsidy in fen
is P · R · S · days / (10⁶ · B · basis) with integer numerator; a line sums its numerators and rounds
half-up once: ⌊(2N + D) / 2D⌋. No loan passes through Python: the policies (a handful of rows per
fund) go into the statement as a VALUES list.

Spans come from one table of events per loan — principal changes, overdue spells starting and ending,
and the dates that cut a span (period bounds, anniversaries, original and current maturity) — summed
by date and run through window functions: the running principal, the running count of open spells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.errors import PolicyError
from loanfund.policy import (
    NOT_ADMITTED,
    SubsidyBorrowerCap,
    SubsidyOfReference,
    SubsidySchedule,
    SubsidyShare,
)
from loanfund.subsidies.periods import Period
from loanfund.subsidies.queries import fund_policies_of, rule_of

__all__ = ["BatchLine", "compute_fund_lines", "lines_select"]

_MAX_YEARS = 10  # schedule shares kept per rule; editions have 3
_RULE_COLUMNS = (
    "policy_idx",
    "borrower_kind",
    "kind",
    "micro_only",
    "cap_from",
    "cap_pp",
    "basis",
    "ext_subsidised",
)


@dataclass(frozen=True)
class BatchLine:
    loan_id: str
    opening_principal_fen: int
    closing_principal_fen: int
    disbursed_fen: int
    repaid_fen: int
    days: int
    excluded_days: int
    interest_fen: int
    subsidy_fen: int
    subsidy_rate_pct: Decimal  # 4 decimals, half-up


def _shares(rule: Any) -> list[Fraction]:
    if isinstance(rule, SubsidyBorrowerCap):
        return _shares(rule.earlier)
    if isinstance(rule, SubsidyShare | SubsidyOfReference):
        return [rule.share]
    if isinstance(rule, SubsidySchedule):
        return list(rule.by_loan_year)
    return []


def _rule_row(rule: Any, scale: int) -> dict[str, Any]:
    """One rule as integers: kind, micro-profit only, shares × scale by loan year, the cn-2020 cap."""
    row: dict[str, Any] = {"cap_from": None, "cap_pp": 0}
    if isinstance(rule, SubsidyBorrowerCap):
        row["cap_from"] = rule.contracted_from
        row["cap_pp"] = int(rule.reference_minus_pp * 10_000)
        rule = rule.earlier
    years = [0] * _MAX_YEARS
    if rule is NOT_ADMITTED:
        kind, micro = "none", False
    elif isinstance(rule, SubsidyShare):
        kind, micro = "share", rule.micro_profit_only
        years = [int(rule.share * scale)] * _MAX_YEARS
    elif isinstance(rule, SubsidySchedule):
        kind, micro = "schedule", False
        if len(rule.by_loan_year) > _MAX_YEARS:
            raise PolicyError(f"a schedule longer than {_MAX_YEARS} years", parameter="subsidy")
        for index, share in enumerate(rule.by_loan_year):
            years[index] = int(share * scale)
    elif isinstance(rule, SubsidyOfReference):
        kind, micro = "reference_share", False
        years = [int(rule.share * scale)] * _MAX_YEARS
    else:
        raise PolicyError("subsidy rule has no formula", parameter="subsidy")
    row.update(kind=kind, micro_only=micro, **{f"y{i + 1}": v for i, v in enumerate(years)})
    return row


# Loans in the period, with the policy chosen by contract date (:policy_case) and its rule.
_SQL = """
WITH rules (policy_idx, borrower_kind, kind, micro_only, cap_from, cap_pp, basis, ext_subsidised,
            {ycols}) AS (
    VALUES {rule_values}
),
l AS (
    SELECT lo.id, lo.disbursed_on, lo.contracted_on, lo.original_maturity_on, lo.maturity_on,
           lo.principal_fen,
           (lo.annual_rate_pct::numeric * 10000)::bigint AS rc,
           (lo.reference_rate_pct::numeric * 10000)::bigint AS rref,
           ap.micro_profit, r.*
    FROM loans lo
    JOIN borrowers bo ON bo.id = lo.borrower_id
    JOIN applications ap ON ap.id = lo.application_id
    JOIN rules r ON r.policy_idx = ({policy_case}) AND r.borrower_kind = bo.kind
    WHERE lo.fund_code = :fund_code {bank_filter}
      AND lo.disbursed_on < :pe AND (lo.repaid_on IS NULL OR lo.repaid_on > :ps)
),
chg AS (
    SELECT id AS loan_id, disbursed_on AS d, principal_fen AS delta FROM l
    UNION ALL
    SELECT rp.loan_id, rp.paid_on, -rp.principal_fen
    FROM loan_repayments rp JOIN l ON l.id = rp.loan_id
    WHERE rp.principal_fen > 0 AND rp.paid_on < :pe
),
ev (loan_id, d, dp, ds, opening, drawn) AS (
    SELECT loan_id, GREATEST(d, :ps), delta, 0,
           CASE WHEN d < :ps THEN delta ELSE 0 END, CASE WHEN d >= :ps AND delta > 0 THEN delta ELSE 0 END
    FROM chg
    UNION ALL
    SELECT sp.loan_id, GREATEST(sp.overdue_since, :ps), 0, 1, 0, 0
    FROM loan_overdue_spells sp JOIN l ON l.id = sp.loan_id
    WHERE sp.overdue_since < :pe AND (sp.cured_on IS NULL OR sp.cured_on > :ps)
    UNION ALL
    SELECT sp.loan_id, sp.cured_on, 0, -1, 0, 0
    FROM loan_overdue_spells sp JOIN l ON l.id = sp.loan_id
    WHERE sp.overdue_since < :pe AND sp.cured_on > :ps AND sp.cured_on < :pe
    UNION ALL
    SELECT l.id, c.d, 0, 0, 0, 0
    FROM l CROSS JOIN LATERAL (VALUES
        (CAST(:ps AS date)), (CAST(:pe AS date)), (l.original_maturity_on), (l.maturity_on),
        ((l.disbursed_on + make_interval(years => GREATEST(1, {year_ps} - {year_d})))::date),
        ((l.disbursed_on + make_interval(years => GREATEST(1, {year_ps} - {year_d} + 1)))::date)
    ) AS c (d)
    WHERE c.d > :ps AND c.d < :pe OR c.d IN (:ps, :pe)
),
points AS (
    SELECT loan_id, d, SUM(dp) AS dp, SUM(ds) AS ds, SUM(opening) AS opening, SUM(drawn) AS drawn
    FROM ev GROUP BY loan_id, d
),
spans AS (
    SELECT loan_id, d AS s,
           LEAD(d) OVER w AS e,
           SUM(dp) OVER (w ROWS UNBOUNDED PRECEDING) AS principal,
           SUM(ds) OVER (w ROWS UNBOUNDED PRECEDING) AS open_spells,
           SUM(opening) OVER p AS opening, SUM(dp) OVER p AS closing, SUM(drawn) OVER p AS drawn
    FROM points
    WINDOW w AS (PARTITION BY loan_id ORDER BY d), p AS (PARTITION BY loan_id)
),
priced AS (
    SELECT sp.loan_id, sp.principal, (sp.e - sp.s) AS days, sp.s, l.basis, sp.opening, sp.closing, sp.drawn,
           CASE WHEN sp.s >= l.maturity_on OR sp.open_spells > 0 THEN 1
                WHEN sp.s >= l.original_maturity_on AND NOT l.ext_subsidised THEN 1
                ELSE 0 END AS excluded,
           l.rc,
           CASE
             WHEN l.cap_from IS NOT NULL AND l.contracted_on >= l.cap_from
               THEN GREATEST(0, l.rc - GREATEST(0, l.rref - l.cap_pp)) * {scale}
             WHEN l.kind = 'none' OR (l.micro_only AND NOT l.micro_profit) THEN 0
             WHEN l.kind = 'reference_share' AND ys.share * l.rref > {scale} * l.rc THEN l.rc * {scale}
             WHEN l.kind = 'reference_share' THEN l.rref * ys.share
             ELSE l.rc * ys.share
           END AS rate_num
    FROM spans sp
    JOIN l ON l.id = sp.loan_id
    CROSS JOIN LATERAL (
        SELECT CASE WHEN l.kind IN ('share', 'reference_share') THEN l.y1 ELSE CASE ({year_s} - {year_d}
                     - CASE WHEN (l.disbursed_on + make_interval(years => {year_s} - {year_d}))::date > sp.s
                            THEN 1 ELSE 0 END)
               {year_cases}
               ELSE 0 END END AS share
    ) AS ys
    WHERE sp.e IS NOT NULL AND sp.principal > 0 AND sp.s >= l.disbursed_on
),
lines AS (
    SELECT loan_id,
           SUM(days)::int AS days,
           SUM(days * excluded)::int AS excluded_days,
           SUM(principal::numeric * rc * days) AS interest_num,
           SUM(principal::numeric * rate_num * days * (1 - excluded)) AS subsidy_num,
           (ARRAY_AGG(rate_num ORDER BY excluded, s DESC))[1] AS rate_num,
           MIN(basis) AS basis, MIN(opening) AS opening, MIN(closing) AS closing, MIN(drawn) AS drawn
    FROM priced GROUP BY loan_id
)
SELECT li.loan_id, li.opening::bigint AS opening_fen, li.closing::bigint AS closing_fen,
       li.drawn::bigint AS disbursed_fen, (li.opening + li.drawn - li.closing)::bigint AS repaid_fen,
       li.days, li.excluded_days,
       div(2 * li.interest_num + 1000000 * li.basis, 2000000 * li.basis)::bigint AS interest_fen,
       div(2 * li.subsidy_num + 1000000 * {scale} * li.basis,
           2000000 * {scale} * li.basis)::bigint AS subsidy_fen,
       div(2 * li.rate_num + {scale}, 2 * {scale}) / 10000.0 AS subsidy_rate_pct
FROM lines li
WHERE li.days > 0
"""


async def lines_select(
    conn: AsyncConnection, fund_code: str, period: Period, *, bank_code: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The statement (text) and its parameters, for `compute_fund_lines` or an `INSERT … SELECT`."""
    fund = await fund_policies_of(conn, fund_code)
    dated = fund.effective_dates
    params: dict[str, Any] = {"fund_code": fund_code, "ps": period.start, "pe": period.end}
    rules = [
        (i, kind, rule_of(fund.at(i), kind), fund.at(i))
        for i in range(len(dated))
        for kind in ("individual", "enterprise")
    ]
    scale = 1
    for _, _, rule, _ in rules:
        for share in _shares(rule):
            scale = math.lcm(scale, share.denominator)
    values = []
    for n, (index, kind, rule, policy) in enumerate(rules):
        row = _rule_row(rule, scale)
        row.update(
            policy_idx=index,
            borrower_kind=kind,
            basis=policy.integer("day_count_basis"),
            ext_subsidised=policy.flag("extension_subsidised"),
        )
        names = [*_RULE_COLUMNS, *[f"y{i + 1}" for i in range(_MAX_YEARS)]]
        casts = {"cap_from": "date", "micro_only": "boolean", "ext_subsidised": "boolean"}
        cells = []
        for name in names:
            key = f"r{n}_{name}"
            params[key] = row[name]
            cast = casts.get(name, "text" if name in ("borrower_kind", "kind") else "bigint")
            cells.append(f"CAST(:{key} AS {cast})")
        values.append(f"({', '.join(cells)})")
    # The first policy holds from the start of time; each later one from its own date.
    case = "0"
    for index in range(1, len(dated)):
        params[f"eff{index}"] = dated[index]
        case = f"CASE WHEN lo.contracted_on >= :eff{index} THEN {index} ELSE {case} END"
    bank_filter = ""
    if bank_code is not None:
        bank_filter = "AND lo.bank_code = :bank_code"
        params["bank_code"] = bank_code
    year_cases = " ".join(f"WHEN {i} THEN y{i + 1}" for i in range(_MAX_YEARS))
    sql = _SQL.format(
        ycols=", ".join(f"y{i + 1}" for i in range(_MAX_YEARS)),
        rule_values=", ".join(values),
        policy_case=case,
        bank_filter=bank_filter,
        scale=scale,
        year_ps="EXTRACT(YEAR FROM CAST(:ps AS date))::int",
        year_d="EXTRACT(YEAR FROM l.disbursed_on)::int",
        year_s="EXTRACT(YEAR FROM sp.s)::int",
        year_cases=year_cases,
    )
    return sql, params


async def compute_fund_lines(
    conn: AsyncConnection, fund_code: str, period: Period, *, bank_code: str | None = None
) -> list[BatchLine]:
    """Every loan's line figures for the period (PostgreSQL), by loan id."""
    if conn.dialect.name != "postgresql":
        raise NotImplementedError("the set-based computation runs on PostgreSQL")
    sql, params = await lines_select(conn, fund_code, period, bank_code=bank_code)
    rows = await conn.execute(sa.text(sql + " ORDER BY li.loan_id"), params)
    return [
        BatchLine(
            loan_id=row.loan_id,
            opening_principal_fen=row.opening_fen,
            closing_principal_fen=row.closing_fen,
            disbursed_fen=row.disbursed_fen,
            repaid_fen=row.repaid_fen,
            days=row.days,
            excluded_days=row.excluded_days,
            interest_fen=row.interest_fen,
            subsidy_fen=row.subsidy_fen,
            subsidy_rate_pct=Decimal(row.subsidy_rate_pct),
        )
        for row in rows
    ]
