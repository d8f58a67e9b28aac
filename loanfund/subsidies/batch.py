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
from collections.abc import Callable
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
from loanfund.terms import add_months

__all__ = ["BatchLine", "compute_fund_lines", "lines_select", "without_jit"]

_MAX_YEARS = 10  # schedule shares kept per rule; editions have 3
_RULE_COLUMNS = ("kind", "micro_only", "cap_from", "cap_pp", "basis", "ext_subsidised")


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


def _year_index(alias: str, day: str) -> str:
    """Loan year at `day`, from 0, counted from the disbursement date (anniversaries clamp like
    terms.add_months: 29 February turns a year on 28 February)."""
    years = f"(EXTRACT(YEAR FROM {day})::int - EXTRACT(YEAR FROM {alias}.disbursed_on)::int)"
    later = f"({alias}.disbursed_on + make_interval(years => {years}))::date > {day}"
    return f"({years} - CASE WHEN {later} THEN 1 ELSE 0 END)"


def _rate(alias: str, year: str, scale: int, attr: Callable[[str, str], str]) -> str:
    """The subsidy rate of the loan in loan year `year` (from 0), as an integer over 10⁴ · scale;
    `attr(alias, name)` reads an attribute of the loan's rule."""

    def a(name: str) -> str:
        return attr(alias, name)

    by_year = " ".join(f"WHEN {i} THEN {a(f'y{i + 1}')}" for i in range(_MAX_YEARS))
    return f"""CASE
             WHEN {a("cap_from")} IS NOT NULL AND {alias}.contracted_on >= {a("cap_from")}
               THEN GREATEST(0, {alias}.rc - GREATEST(0, {alias}.rref - {a("cap_pp")})) * {scale}
             WHEN {a("kind")} = 'none' OR ({a("micro_only")} AND NOT {alias}.micro_profit) THEN 0
             WHEN {a("kind")} = 'reference_share' AND {a("y1")} * {alias}.rref > {scale} * {alias}.rc
               THEN {alias}.rc * {scale}
             WHEN {a("kind")} = 'reference_share' THEN {alias}.rref * {a("y1")}
             WHEN {a("kind")} = 'share' THEN {alias}.rc * {a("y1")}
             ELSE {alias}.rc * CASE {year} {by_year} ELSE 0 END
           END"""


# Loans in the period, with the policy chosen by contract date ({policy_case}) and its rule. A loan
# whose principal does not change inside the period and that has no overdue spell in it ("steady")
# has at most four spans, cut by one anniversary and the start of its excluded days: its line is
# closed-form arithmetic on its row. The others go through the events and window functions.
_SQL = """
WITH l AS (
    SELECT lo.id, lo.disbursed_on, lo.contracted_on, lo.original_maturity_on, lo.maturity_on,
           lo.principal_fen,
           (lo.annual_rate_pct::numeric * 10000)::bigint AS rc,
           (lo.reference_rate_pct::numeric * 10000)::bigint AS rref,
           {micro_profit} AS micro_profit, k.key
    FROM loans lo
    JOIN borrowers bo ON bo.id = lo.borrower_id
    {applications_join}
    CROSS JOIN LATERAL (
        SELECT ({policy_case}) * 2 + CASE WHEN bo.kind = 'individual' THEN 1 ELSE 2 END AS key
    ) AS k
    WHERE lo.fund_code = :fund_code {bank_filter}
      AND lo.disbursed_on < :pe AND (lo.repaid_on IS NULL OR lo.repaid_on > :ps)
),
moving AS (
    SELECT loan_id FROM loan_repayments WHERE principal_fen > 0 AND paid_on >= :ps AND paid_on < :pe
    UNION
    SELECT loan_id FROM loan_overdue_spells
    WHERE overdue_since < :pe AND (cured_on IS NULL OR cured_on > :ps)
),
before AS (
    SELECT loan_id, SUM(principal_fen) AS repaid FROM loan_repayments
    WHERE principal_fen > 0 AND paid_on < :ps GROUP BY loan_id
),
steady AS (
    SELECT l.*, l.principal_fen - COALESCE(b.repaid, 0) AS p,
           GREATEST(CAST(:ps AS date), l.disbursed_on) AS st,
           GREATEST(GREATEST(CAST(:ps AS date), l.disbursed_on), LEAST(CAST(:pe AS date),
               CASE WHEN {ext_l} THEN l.maturity_on ELSE l.original_maturity_on END)) AS ex
    FROM l LEFT JOIN before b ON b.loan_id = l.id
    WHERE {steady_ok} AND NOT EXISTS (SELECT 1 FROM moving m WHERE m.loan_id = l.id)
),
steady_spans AS (
    SELECT s.*, (CAST(:pe AS date) - s.st) AS days, y.yi,
           CASE WHEN an.a > s.st AND an.a < CAST(:pe AS date) THEN an.a END AS ann
    FROM steady s
    CROSS JOIN LATERAL (SELECT {year_end_idx} AS yi) AS y
    CROSS JOIN LATERAL (SELECT (s.disbursed_on + make_interval(years => y.yi))::date AS a) AS an
    WHERE s.p > 0
),
steady_lines AS (
    SELECT ss.*,
           GREATEST(0, ss.ex - GREATEST(ss.st, COALESCE(ss.ann, ss.st))) AS sub_late,
           CASE WHEN ss.ann IS NULL THEN 0 ELSE GREATEST(0, LEAST(ss.ex, ss.ann) - ss.st) END AS sub_early,
           {rate_late} AS r_late,
           CASE WHEN ss.ann IS NULL THEN 0 ELSE {rate_early} END AS r_early
    FROM steady_spans ss
),
lg AS (
    {lg_source}
),
chg AS (
    SELECT id AS loan_id, disbursed_on AS d, principal_fen AS delta FROM lg
    UNION ALL
    SELECT rp.loan_id, rp.paid_on, -rp.principal_fen
    FROM loan_repayments rp JOIN lg ON lg.id = rp.loan_id
    WHERE rp.principal_fen > 0 AND rp.paid_on < :pe
),
ev (loan_id, d, dp, ds, opening, drawn) AS (
    SELECT loan_id, GREATEST(d, :ps), delta, 0,
           CASE WHEN d < :ps THEN delta ELSE 0 END, CASE WHEN d >= :ps AND delta > 0 THEN delta ELSE 0 END
    FROM chg
    UNION ALL
    SELECT sp.loan_id, GREATEST(sp.overdue_since, :ps), 0, 1, 0, 0
    FROM loan_overdue_spells sp JOIN lg ON lg.id = sp.loan_id
    WHERE sp.overdue_since < :pe AND (sp.cured_on IS NULL OR sp.cured_on > :ps)
    UNION ALL
    SELECT sp.loan_id, sp.cured_on, 0, -1, 0, 0
    FROM loan_overdue_spells sp JOIN lg ON lg.id = sp.loan_id
    WHERE sp.overdue_since < :pe AND sp.cured_on > :ps AND sp.cured_on < :pe
    UNION ALL
    SELECT lg.id, c.d, 0, 0, 0, 0
    FROM lg CROSS JOIN LATERAL (
        SELECT CAST(:ps AS date) UNION ALL SELECT CAST(:pe AS date)
        UNION ALL SELECT lg.original_maturity_on UNION ALL SELECT lg.maturity_on
        UNION ALL SELECT (lg.disbursed_on + make_interval(years => n))::date
        FROM {anniversaries}
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
    SELECT sp.loan_id, sp.principal, (sp.e - sp.s) AS days, sp.s, {basis_lg} AS basis,
           sp.opening, sp.closing, sp.drawn,
           CASE WHEN sp.s >= lg.maturity_on OR sp.open_spells > 0 THEN 1
                WHEN sp.s >= lg.original_maturity_on AND NOT {ext_lg} THEN 1
                ELSE 0 END AS excluded,
           lg.rc,
           {rate_span} AS rate_num
    FROM spans sp
    JOIN lg ON lg.id = sp.loan_id
    WHERE sp.e IS NOT NULL AND sp.principal > 0 AND sp.s >= lg.disbursed_on
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
    UNION ALL
    SELECT id, days, (CAST(:pe AS date) - ex),
           p::numeric * rc * days,
           p::numeric * (r_early * sub_early + r_late * sub_late),
           CASE WHEN sub_late > 0 OR sub_early = 0 THEN r_late ELSE r_early END,
           {basis_sl}, CASE WHEN disbursed_on < :ps THEN p ELSE 0 END, p,
           CASE WHEN disbursed_on < :ps THEN 0 ELSE p END
    FROM steady_lines
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
    # Each rule attribute is an array indexed by policy and borrower kind: looked up on the loan's
    # row, so the planner keeps the loans' own row counts (a join on a computed key would not).
    rows = []
    for _, _, rule, policy in rules:
        row = _rule_row(rule, scale)
        row.update(
            basis=policy.integer("day_count_basis"), ext_subsidised=policy.flag("extension_subsidised")
        )
        rows.append(row)
    casts = {"cap_from": "date", "micro_only": "boolean", "ext_subsidised": "boolean", "kind": "text"}
    arrays = {}
    for name in [*_RULE_COLUMNS, *[f"y{i + 1}" for i in range(_MAX_YEARS)]]:
        cast = casts.get(name, "bigint")
        for n, row in enumerate(rows):
            params[f"r{n}_{name}"] = row[name]
        arrays[name] = "(ARRAY[" + ", ".join(f"CAST(:r{n}_{name} AS {cast})" for n in range(len(rows))) + "])"

    def attr(alias: str, name: str) -> str:
        return f"{arrays[name]}[{alias}.key]"

    micro = any(row["micro_only"] for row in rows)
    # The first policy holds from the start of time; each later one from its own date.
    case = "0"
    for index in range(1, len(dated)):
        params[f"eff{index}"] = dated[index]
        case = f"CASE WHEN lo.contracted_on >= :eff{index} THEN {index} ELSE {case} END"
    bank_filter = ""
    if bank_code is not None:
        bank_filter = "AND lo.bank_code = :bank_code"
        params["bank_code"] = bank_code
    # At most one anniversary falls inside a period of twelve months or less.
    steady_ok = "TRUE" if add_months(period.start, 12) >= period.end else "FALSE"
    year_ps, year_pe = (
        "EXTRACT(YEAR FROM CAST(:ps AS date))::int",
        "EXTRACT(YEAR FROM CAST(:pe AS date))::int",
    )
    first_year = f"GREATEST(1, {year_ps} - EXTRACT(YEAR FROM lg.disbursed_on)::int - 1)"
    if steady_ok == "TRUE":
        # A join, not `IN (…)`: the planner would test each loan against the whole list.
        lg_source = "SELECT l.* FROM l JOIN moving m ON m.loan_id = l.id"
        # The anniversaries that can fall in a period of twelve months or less: a fixed list keeps
        # the planner's row estimate (a set-returning function counts as a thousand rows).
        anniversaries = f"(VALUES ({first_year}), ({first_year} + 1), ({first_year} + 2)) AS a (n)"
    else:
        lg_source = "SELECT * FROM l"
        last_year = f"{year_pe} - EXTRACT(YEAR FROM lg.disbursed_on)::int + 1"
        anniversaries = f"generate_series({first_year}, {last_year}) AS n"
    last_day = "(CAST(:pe AS date) - 1)"
    sql = _SQL.format(
        ext_l=attr("l", "ext_subsidised"),
        ext_lg=attr("lg", "ext_subsidised"),
        basis_lg=attr("lg", "basis"),
        basis_sl=attr("steady_lines", "basis"),
        micro_profit="ap.micro_profit" if micro else "FALSE",
        applications_join="JOIN applications ap ON ap.id = lo.application_id" if micro else "",
        policy_case=case,
        bank_filter=bank_filter,
        scale=scale,
        steady_ok=steady_ok,
        lg_source=lg_source,
        anniversaries=anniversaries,
        year_end_idx=_year_index("s", last_day),
        rate_late=_rate("ss", "ss.yi", scale, attr),
        rate_early=_rate("ss", "(ss.yi - 1)", scale, attr),
        rate_span=_rate("lg", _year_index("lg", "sp.s"), scale, attr),
    )
    return sql, params


async def without_jit(conn: AsyncConnection) -> None:
    """For the rest of the transaction: the statement's cost estimate makes PostgreSQL compile it
    (JIT), which takes longer than running it."""
    await conn.execute(sa.text("SET LOCAL jit = off"))


async def compute_fund_lines(
    conn: AsyncConnection, fund_code: str, period: Period, *, bank_code: str | None = None
) -> list[BatchLine]:
    """Every loan's line figures for the period (PostgreSQL), by loan id."""
    if conn.dialect.name != "postgresql":
        raise NotImplementedError("the set-based computation runs on PostgreSQL")
    sql, params = await lines_select(conn, fund_code, period, bank_code=bank_code)
    await without_jit(conn)
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
