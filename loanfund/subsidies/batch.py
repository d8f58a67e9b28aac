"""The lines of every loan of a fund for a period, computed by PostgreSQL, set-based.

The same rules as `interest.compute_line`, in integer arithmetic so that both give the same fen:
a rate of at most four decimals is R / 10⁴ percent, a share a / b is (a · B / b) / B with B the least
common multiple of every share denominator in the fund's policies, so a span's exact subsidy in fen
is P · R · S · days / (10⁶ · B · basis) with integer numerator; a line sums its numerators and rounds
half-up once: ⌊(2N + D) / 2D⌋. No loan passes through Python: the rules of the fund's policies (a
handful) are written into the statement as one expression per policy and kind of borrower.

Every day from a loan's exclusion date on is excluded (the earliest of compensation, maturity, and the
original maturity when extensions earn nothing), and so is every day of an overdue spell; the loan
year (the taper) turns on each anniversary of the disbursement. A line is then a sum, for each loan
year the period touches, of principal × subsidised days, times that year's rate.

Two statements, set-based (no loan passes through Python):

1. `subsidy_moved`, a temporary table of the loans that need their events: those with repayments
   on two days or more inside the period, or two overdue spells in it (every loan, for a period
   longer than twelve months), with their rule and dates computed once; analysed, so that the planner
   knows its size. Few when loans are repaid now and then; most of a portfolio repaid in monthly
   instalments (a quarter holds three repayment days), which then costs the events' sort.
2. The lines. Every other loan straight from `loans` in closed form: at most two spans (before and
   from its one repayment day), each split at most once by an anniversary, subsidised up to the
   exclusion date less the days of its one spell: arithmetic on its row, joined with the sums of its
   repayments from the start of the period on and its spell (what it repaid before the period is its
   principal less its stored outstanding less those: the history of repayments is not read). The
   moved loans through their events (principal changes, spells starting and ending, anniversaries)
   sorted by loan and date, with the running principal, count of open spells and loan year, summed
   per loan.

Arithmetic is bigint where a bound proves it cannot overflow (`_RATE_MAX`, `_Plan.principal_max`):
loans beyond it (absurd principals or rates) take the same formulas in numeric. Sums of principal ×
days stay bigint (up to 10¹⁶ fen of principal for a quarter); PostgreSQL raises on bigint overflow
rather than wrapping, so a figure is never silently wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.db.tables import compensation_claims
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

__all__ = ["BatchLine", "batch_settings", "compute_fund_lines", "lines_select"]

_KINDS = ("individual", "enterprise")
# Contract and reference rates up to 30 % (R ≤ 300,000) are computed in bigint; higher ones (none in
# practice: rates are capped far lower) in numeric.
_RATE_MAX = 300_000
_BIGINT_MAX = 2**63 - 1
_MOVED = "subsidy_moved"


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


def _scaled(value: Fraction | Decimal, scale: int, what: str) -> int:
    exact = Fraction(value) * scale
    if exact.denominator != 1:
        raise PolicyError(f"{what} has more than four decimals", parameter="subsidy")
    return int(exact)


def _rate_sql(rule: Any, scale: int, year: str) -> str:
    """The loan's subsidy rate in loan year `year` (from 0), as an integer over 10⁴ · scale, from the
    columns rc, rref (rates × 10⁴), contracted_on and micro of the row."""
    if isinstance(rule, SubsidyBorrowerCap):
        pp = _scaled(rule.reference_minus_pp, 10_000, "the borrower cap")
        earlier = _rate_sql(rule.earlier, scale, year)
        return (
            f"CASE WHEN contracted_on >= DATE '{rule.contracted_from.isoformat()}'"
            f" THEN GREATEST(0, rc - GREATEST(0, rref - {pp})) * {scale} ELSE {earlier} END"
        )
    if rule is NOT_ADMITTED:
        return "0"
    if isinstance(rule, SubsidyShare):
        share = _scaled(rule.share, scale, "a share")
        return f"CASE WHEN micro THEN rc * {share} ELSE 0 END" if rule.micro_profit_only else f"rc * {share}"
    if isinstance(rule, SubsidySchedule):
        shares = " ".join(
            f"WHEN {i} THEN {_scaled(s, scale, 'a share')}" for i, s in enumerate(rule.by_loan_year)
        )
        return f"rc * CASE {year} {shares} ELSE 0 END"
    if isinstance(rule, SubsidyOfReference):
        # Never more than the contract rate.
        return f"LEAST(rref * {_scaled(rule.share, scale, 'a share')}, rc * {scale})"
    raise PolicyError("subsidy rule has no formula", parameter="subsidy")


def _share_top(rule: Any, scale: int) -> int:
    """The largest factor the rule multiplies a rate (× 10⁴) by: rates are at most rc × this."""
    return max([scale, *(_scaled(s, scale, "a share") for s in _shares(rule))])


def _needs_micro(rule: Any) -> bool:
    if isinstance(rule, SubsidyBorrowerCap):
        return _needs_micro(rule.earlier)
    return isinstance(rule, SubsidyShare) and rule.micro_profit_only


def _year_index(day: str) -> str:
    """Loan year at `day` (not before the disbursement), from 0, counted from the disbursement date
    (anniversaries clamp like terms.add_months: 29 February turns a year on 28 February)."""
    years = f"(date_part('year', {day})::int - date_part('year', lo.disbursed_on)::int)"
    later = f"(lo.disbursed_on + make_interval(years => {years}))::date > {day}"
    return f"({years} - CASE WHEN {later} THEN 1 ELSE 0 END)"


def _by_policy(values: list[str], index: str) -> str:
    if len(set(values)) == 1:
        return values[0]
    whens = " ".join(f"WHEN {i} THEN {v}" for i, v in enumerate(values))
    return f"CASE {index} {whens} END"


@dataclass(frozen=True)
class _Plan:
    """What the statements are made of, from the fund's policies and the period."""

    rules: list[Any]  # by key: policy index × 2 + (0 individual, 1 firm)
    scale: int
    years: int  # anniversaries a loan can have inside the period
    short: bool  # twelve months or less: loans without changes take the closed form
    same_year: int | None  # the calendar year of a period inside one (every claim period)
    policy: str  # the index of the policy in force on the loan's contract date
    bases: list[str]  # day-count basis by policy
    never_subsidised: list[str]  # by policy: from which day the loan's days are excluded
    micro: bool  # a rule looks at the micro-profit flag of the application
    compensated: bool  # the fund has paid compensation for some loan
    bank_filter: str
    principal_max: int


def _plan(
    fund: Any, period: Period, bank_code: str | None, params: dict[str, Any], *, compensated: bool
) -> _Plan:
    dated = fund.effective_dates
    policies = [fund.at(i) for i in range(len(dated))]
    rules = [rule_of(policy, kind) for policy in policies for kind in _KINDS]
    scale = 1
    for rule in rules:
        for share in _shares(rule):
            scale = math.lcm(scale, share.denominator)
    top = max(_share_top(rule, scale) for rule in rules)
    bases = [policy.integer("day_count_basis") for policy in policies]
    short = add_months(period.start, 12) >= period.end
    # Each calendar year holds one anniversary of a loan; a period of twelve months or less at most one.
    last_year = (period.end - timedelta(days=1)).year
    years = 1 if short else last_year - period.start.year + 1
    # 2N + D fits in a bigint when N ≤ P · rate × share · days, each at its bound (see the docstring).
    principal_max = (_BIGINT_MAX - 10**6 * scale * max(bases)) // (2 * _RATE_MAX * top * period.days)
    # The first policy holds from the start of time, each later one from its date.
    policy = "0"
    for index in range(1, len(dated)):
        since = dated[index].isoformat()
        policy = f"CASE WHEN lo.contracted_on >= DATE '{since}' THEN {index} ELSE {policy} END"
    bank_filter = ""
    if bank_code is not None:
        bank_filter = "AND lo.bank_code = :bank_code"
        params["bank_code"] = bank_code
    return _Plan(
        rules=rules,
        scale=scale,
        years=years,
        short=short,
        same_year=period.start.year if short and period.start.year == last_year else None,
        policy=policy,
        bases=[str(b) for b in bases],
        never_subsidised=[
            "lo.maturity_on"
            if p.flag("extension_subsidised")
            else "LEAST(lo.maturity_on, lo.original_maturity_on)"
            for p in policies
        ],
        micro=any(_needs_micro(rule) for rule in rules),
        compensated=compensated,
        bank_filter=bank_filter,
        principal_max=principal_max,
    )


def _loans_sql(plan: _Plan, *, where: str, joins: str = "", before: str = "0", extra: str = "") -> str:
    """The fund's loans with principal out in the period, one row each: the figures the rules read
    (rates × 10⁴ as integers), the rule's key, the day from which its days are excluded (the earliest
    of compensation, maturity, and the original maturity when extensions earn nothing), and what
    its loan years need (`_dates`). Computed once per loan: OFFSET 0 keeps the level from being
    merged into the one above, which would repeat each expression wherever its column is read."""
    # Rates have at most four decimals (money.parse_pct): as numeric, scaled by 10⁴, they are integers
    # exactly (no binary floating point anywhere near money).
    policy = f"({plan.policy})"
    excluded_from = ["CAST(:pe AS date)", _by_policy(plan.never_subsidised, policy)]
    compensation = ""
    if plan.compensated:
        excluded_from.append("cc.decided_on")
        compensation = """LEFT JOIN (
            SELECT loan_id, MIN(decided_on) AS decided_on FROM compensation_claims
            WHERE fund_code = :fund_code AND status = 'paid' GROUP BY loan_id
        ) cc ON cc.loan_id = lo.id"""
    if plan.same_year is not None:
        # The loan's anniversary in the period's year (its disbursement, in the year of disbursement):
        # the only one that can fall in the period.
        year = "date_part('year', lo.disbursed_on)::int"
        anniversary = f"(lo.disbursed_on + make_interval(years => {plan.same_year} - {year}))::date"
        dated = f"{year} AS dy, {anniversary} AS a"
    else:
        dated = f"{_year_index('GREATEST(CAST(:ps AS date), lo.disbursed_on)')} AS y0"
    return f"""
    SELECT lo.id, lo.disbursed_on, lo.contracted_on, lo.principal_fen, {before} AS before,
           (lo.annual_rate_pct::numeric * 10000)::bigint AS rc,
           (lo.reference_rate_pct::numeric * 10000)::bigint AS rref,
           {"ap.micro_profit" if plan.micro else "FALSE"} AS micro,
           {policy} * 2 + CASE WHEN lo.borrower_kind = 'individual' THEN 0 ELSE 1 END AS key,
           {_by_policy(plan.bases, policy)} AS basis,
           LEAST({", ".join(excluded_from)}) AS ex,
           {dated}{extra}
    FROM loans lo
    {"JOIN applications ap ON ap.id = lo.application_id" if plan.micro else ""}
    {compensation}
    {joins}
    WHERE lo.fund_code = :fund_code {plan.bank_filter}
      AND lo.disbursed_on < :pe AND (lo.repaid_on IS NULL OR lo.repaid_on > :ps) {where}
    OFFSET 0
    """


_START = "GREATEST(CAST(:ps AS date), disbursed_on)"


def _dates(plan: _Plan) -> tuple[str, list[str]]:
    """On a row of `_loans_sql`: the loan year (from 0) at the start of the period, and the
    anniversaries after it inside the period (NULL when none)."""
    if plan.same_year is not None:
        y0 = f"({plan.same_year} - dy - CASE WHEN a > {_START} THEN 1 ELSE 0 END)"
        return y0, [f"CASE WHEN a > {_START} AND a < :pe THEN a END"]
    return "y0", [
        f"CASE WHEN (disbursed_on + make_interval(years => y0 + {n}))::date < :pe"
        f" THEN (disbursed_on + make_interval(years => y0 + {n}))::date END"
        for n in range(1, plan.years + 1)
    ]


def _rates(plan: _Plan, y0: str) -> tuple[list[str], list[str]]:
    """The select items of the rates of loan years y0 + j (j = 0 … years) and the names to read
    them by: one rate when no rule tapers."""
    tapers = any(_tapers(rule) for rule in plan.rules)
    items = []
    for j in range(plan.years + 1 if tapers else 1):
        by_key = [_rate_sql(rule, plan.scale, f"({y0} + {j})") for rule in plan.rules]
        items.append(f"{_by_policy(by_key, 'key')} AS r{j}")
    return items, [f"r{j}" if tapers else "r0" for j in range(plan.years + 1)]


def _tapers(rule: Any) -> bool:
    if isinstance(rule, SubsidyBorrowerCap):
        return _tapers(rule.earlier)
    return isinstance(rule, SubsidySchedule)


def _safe(alias: str = "") -> str:
    # Every rate is at most the contract rate × the largest share (the reference rate only ever
    # lowers it), so the contract rate and the principal bound the sums.
    return f"({alias}principal_fen <= :principal_max AND {alias}rc <= :rate_max)"


def _figures(plan: _Plan, *, pdays: str, terms: list[tuple[str, str]], shown: str) -> str:
    """Interest, subsidy and the rate shown from the line's sums: Σ principal × days (`pdays`) and,
    per loan year, (rate, Σ principal × subsidised days). Rounded half-up once: ⌊(2N + D) / 2D⌋."""
    big = " + ".join(f"{rate} * ({sums})" for rate, sums in terms)
    exact = " + ".join(f"{rate}::numeric * ({sums})" for rate, sums in terms)
    # One day-count basis for the whole fund (the usual case) is written as a constant, which
    # PostgreSQL folds into the constants beside it.
    basis = plan.bases[0] if len(set(plan.bases)) == 1 else "basis"
    denominator = f"({10**6 * plan.scale}::bigint * {basis})"
    return f"""CASE WHEN safe THEN (2 * rc * ({pdays}) + 1000000 * {basis}) / (2000000 * {basis})
                ELSE div(2 * rc::numeric * ({pdays}) + 1000000 * {basis}, 2000000 * {basis})::bigint
           END AS interest_fen,
           CASE WHEN safe THEN (2 * ({big}) + {denominator}) / (2 * {denominator})
                ELSE div(2 * ({exact}) + {denominator}, 2 * {denominator})::bigint
           END AS subsidy_fen,
           ((2 * ({shown}) + {plan.scale}) / (2 * {plan.scale})) * 0.0001 AS subsidy_rate_pct"""


# A loan with a repayment on two days or more inside the period, or two overdue spells in it, goes
# through its events (`_moved_sql`); every other loan takes the closed form (`_closed_sql`).
_MOVING = """AND lo.id IN (
    SELECT loan_id FROM loan_repayments WHERE principal_fen > 0 AND paid_on >= :ps AND paid_on < :pe
    GROUP BY loan_id HAVING MIN(paid_on) < MAX(paid_on)
    UNION
    SELECT loan_id FROM loan_overdue_spells
    WHERE overdue_since < :pe AND (cured_on IS NULL OR cured_on > :ps)
    GROUP BY loan_id HAVING COUNT(*) > 1
)"""


def _moved_table_sql(plan: _Plan) -> str:
    y0, anniversaries = _dates(plan)
    columns = ", ".join(f"{ann} AS ann{n}" for n, ann in enumerate(anniversaries, start=1))
    loans_sql = _loans_sql(plan, where=_MOVING if plan.short else "")
    return f"""
    CREATE TEMPORARY TABLE {_MOVED} ON COMMIT DROP AS
    SELECT row_number() OVER () AS k, id, disbursed_on, contracted_on, principal_fen, rc, rref, micro,
           key, basis, ex, {_START} AS st, {y0} AS y0, {columns}
    FROM ({loans_sql}) lo
    """


async def _create_moved(conn: AsyncConnection, plan: _Plan, params: dict[str, Any]) -> bool:
    """Fill the table of moved loans; whether there are any."""
    await conn.execute(sa.text(f"DROP TABLE IF EXISTS pg_temp.{_MOVED}"))
    await conn.execute(sa.text(_moved_table_sql(plan)), params)
    # Its size and the spread of its keys are what the planner needs for the joins on them.
    await conn.execute(sa.text(f"ANALYZE {_MOVED} (id, k)"))
    return bool(await conn.scalar(sa.text(f"SELECT EXISTS (SELECT 1 FROM {_MOVED})")))


def _overlap(a: str, b: str, c: str, d: str) -> str:
    """Days in both [a, b) and [c, d)."""
    return f"GREATEST(0, LEAST({b}, {d}) - GREATEST({a}, {c}))"


def _closed_sql(plan: _Plan, *, moved: bool) -> str:
    """Loans with at most one repayment day and one overdue spell in the period, in closed form: two
    spans of one principal each, before and from the repayment day, each split by the anniversary
    (loan years y0 and y0 + 1) and subsidised up to the exclusion date, less the spell's days."""
    loans_sql = _loans_sql(
        plan,
        # Every loan but the moved ones: few, and a table the planner knows (a test on the sums below
        # would be one it cannot estimate, and it would plan for a handful of loans).
        where=f"AND NOT EXISTS (SELECT 1 FROM {_MOVED} m WHERE m.id = lo.id)" if moved else "",
        # One lookup per loan for both its repayments and its spells (a hash join each cost a probe
        # per loan of the fund). Only the repayments from the start of the period on: the principal
        # repaid before it is what the loan's stored outstanding does not account for among them (the
        # outstanding is the principal less every repayment, written with each), so a portfolio's
        # history of repayments, most of its rows, is not read.
        joins="""LEFT JOIN (
            SELECT loan_id, SUM(fen)::bigint AS repaid_since,
                   SUM(fen) FILTER (WHERE d < :pe)::bigint AS repaid_in,
                   MIN(d) FILTER (WHERE d < :pe) AS repaid_on,
                   MIN(since) AS since, MIN(cured) AS cured
            FROM (
                SELECT loan_id, paid_on, principal_fen, NULL::date, NULL::date FROM loan_repayments
                WHERE principal_fen > 0 AND paid_on >= :ps
                UNION ALL
                SELECT loan_id, NULL, NULL, overdue_since, cured_on FROM loan_overdue_spells
                WHERE overdue_since < :pe AND (cured_on IS NULL OR cured_on > :ps)
            ) ev (loan_id, d, fen, since, cured)
            GROUP BY loan_id
        ) ev ON ev.loan_id = lo.id""",
        before="lo.principal_fen - lo.outstanding_fen - COALESCE(ev.repaid_since, 0)",
        extra=""",
           COALESCE(ev.repaid_in, 0) AS repaid_in, ev.repaid_on, ev.since, ev.cured""",
    )
    y0, [anniversary] = _dates(plan)
    items, (r0, r1) = _rates(plan, y0)
    end = "CAST(:pe AS date)"
    # Span 0 is [st, t), span 1 [t, end); days before `cut` are in loan year y0, the others in y0 + 1;
    # subsidised are those before the exclusion date `ex` and outside the spell [sp_on, sp_off). With
    # st ≤ t ≤ end, st < cut ≤ end and ex ≤ end, the overlaps of the spans with [st, min(cut, ex))
    # and [cut, ex) reduce to the expressions below. Most loans have no repayment day (span 1 empty)
    # and no spell: CASE spares them that arithmetic.
    spell = "CASE WHEN sp_on < sp_off THEN {} ELSE 0 END"
    early_spell = "sp_on", "LEAST(sp_off, cut, ex)"
    late_spell = "GREATEST(sp_on, cut)", "LEAST(sp_off, ex)"
    spans = f"""GREATEST(0, LEAST(t, cut, ex) - st)
                   - {spell.format(_overlap("st", "t", *early_spell))} AS a0,
               GREATEST(0, LEAST(t, ex) - cut) - {spell.format(_overlap("st", "t", *late_spell))} AS b0,
               CASE WHEN t < {end} THEN GREATEST(0, LEAST(cut, ex) - t)
                   - {spell.format(_overlap("t", end, *early_spell))} ELSE 0 END AS a1,
               CASE WHEN t < {end} THEN GREATEST(0, ex - GREATEST(t, cut))
                   - {spell.format(_overlap("t", end, *late_spell))} ELSE 0 END AS b1"""
    late_days = f"k0 * GREATEST(0, t - cut) + k1 * ({end} - GREATEST(t, cut))"
    figures = _figures(
        plan,
        pdays=f"q0 * (t - st) + q1 * ({end} - t)",
        terms=[(r0, "q0 * a0 + q1 * a1"), (r1, "q0 * b0 + q1 * b1")],
        # The last subsidised day's rate, else the last day's: loan year y0 + 1 if it is after `cut`.
        shown=f"""CASE WHEN k0 * b0 + k1 * b1 > 0 THEN {r1} WHEN k0 * a0 + k1 * a1 > 0 THEN {r0}
                       WHEN {late_days} > 0 THEN {r1} ELSE {r0} END""",
    )
    return f"""
    SELECT id AS loan_id, opening AS opening_fen, p1 AS closing_fen, drawn AS disbursed_fen,
           opening + drawn - p1 AS repaid_fen, k0 * (t - st) + k1 * ({end} - t) AS days,
           k0 * (t - st - a0 - b0) + k1 * ({end} - t - a1 - b1) AS excluded_days,
           {figures}
    FROM (
        -- Spans whose principal is not positive have no days (the engine skips them).
        SELECT lo.*, CASE WHEN p0 > 0 THEN 1 ELSE 0 END AS k0, CASE WHEN p1 > 0 THEN 1 ELSE 0 END AS k1,
               GREATEST(p0, 0) AS q0, GREATEST(p1, 0) AS q1,
               {spans}
        FROM (
            SELECT id, rc, basis, {_safe()} AS safe, ex,
                   principal_fen - before AS p0, principal_fen - before - repaid_in AS p1,
                   {_START} AS st,
                   GREATEST(COALESCE(repaid_on, {end}), {_START}) AS t,
                   COALESCE({anniversary}, {end}) AS cut,
                   GREATEST(COALESCE(since, {end}), {_START}) AS sp_on,
                   LEAST(cured, {end}) AS sp_off,
                   {", ".join(items)},
                   CASE WHEN disbursed_on < :ps THEN principal_fen ELSE 0 END - before AS opening,
                   CASE WHEN disbursed_on < :ps THEN 0 ELSE principal_fen END AS drawn
            FROM ({loans_sql}) lo
            OFFSET 0
        ) lo
        OFFSET 0
    ) lo
    WHERE (p0 > 0 AND t > st) OR (p1 > 0 AND t < {end})
    """


def _moved_sql(plan: _Plan) -> str:
    """Moved loans: events sorted by loan and date give each span of the period its principal, count
    of open spells and loan year (from y0); the spans are summed per loan."""
    anniversaries = " UNION ALL ".join(
        f"SELECT k, ann{n}, 0, 0, 1, 0, ex FROM {_MOVED} WHERE ann{n} IS NOT NULL"
        for n in range(1, plan.years + 1)
    )
    years = range(plan.years + 1)
    by_year = ", ".join(f"SUM(CASE WHEN j = {j} THEN p * sub ELSE 0 END)::bigint AS s{j}" for j in years)
    items, names = _rates(plan, "y0")
    figures = _figures(
        plan,
        pdays="pdays",
        terms=[(name, f"s{j}") for j, name in enumerate(names)],
        shown="CASE js " + " ".join(f"WHEN {j} THEN {name}" for j, name in enumerate(names)) + " END",
    )
    return f"""
    SELECT id AS loan_id, opening AS opening_fen, closing AS closing_fen, drawn AS disbursed_fen,
           opening + drawn - closing AS repaid_fen, days, days - sub_days AS excluded_days,
           {figures}
    FROM (
        SELECT m.id, m.rc, m.basis, {_safe("m.")} AS safe, g.*, {", ".join(items)},
               CASE WHEN m.disbursed_on < :ps THEN 0 ELSE m.principal_fen END AS drawn
        FROM (
            SELECT k, SUM(days)::int AS days, SUM(sub)::int AS sub_days, SUM(p * days)::bigint AS pdays,
                   {by_year},
                   -- The rate shown is the last subsidised span's, else the last span's: loan years
                   -- only grow, so the largest year of those spans.
                   COALESCE(MAX(j) FILTER (WHERE sub > 0), MAX(j) FILTER (WHERE days > 0)) AS js,
                   SUM(op)::bigint AS opening, SUM(dp)::bigint AS closing
            FROM (
                -- Days of the span, and those subsidised: none while a spell is open, else those
                -- before the exclusion date.
                SELECT k, j, p, dp, op, CASE WHEN p > 0 THEN e - s ELSE 0 END AS days,
                       CASE WHEN p > 0 AND spells <= 0 THEN GREATEST(0, LEAST(e, ex) - s) ELSE 0 END AS sub
                FROM (
                    SELECT k, d AS s, LEAD(d, 1, CAST(:pe AS date)) OVER w AS e,
                           (SUM(dp) OVER w)::bigint AS p, SUM(ds) OVER w AS spells, SUM(dy) OVER w AS j,
                           dp, op, ex
                    FROM (
                        -- The principal from the start (disbursement, repayments before it), each
                        -- repayment on its day; spells open and close; anniversaries.
                        SELECT k, st AS d, principal_fen AS dp, 0 AS ds, 0 AS dy,
                               CASE WHEN disbursed_on < :ps THEN principal_fen ELSE 0 END AS op, ex
                        FROM {_MOVED}
                        UNION ALL
                        SELECT m.k, GREATEST(r.paid_on, m.st), -r.principal_fen, 0, 0,
                               CASE WHEN r.paid_on < :ps THEN -r.principal_fen ELSE 0 END, m.ex
                        FROM loan_repayments r JOIN {_MOVED} m ON m.id = r.loan_id
                        WHERE r.principal_fen > 0 AND r.paid_on < :pe
                        UNION ALL
                        SELECT m.k, GREATEST(x.d, m.st), 0, x.ds, 0, 0, m.ex
                        FROM loan_overdue_spells sp JOIN {_MOVED} m ON m.id = sp.loan_id
                        CROSS JOIN LATERAL (VALUES (sp.overdue_since, 1), (sp.cured_on, -1)) x (d, ds)
                        WHERE sp.overdue_since < :pe AND (sp.cured_on IS NULL OR sp.cured_on > :ps)
                          AND (x.ds = 1 OR x.d < :pe)
                        UNION ALL
                        {anniversaries}
                    ) ev (k, d, dp, ds, dy, op, ex)
                    WINDOW w AS (PARTITION BY k ORDER BY d ROWS UNBOUNDED PRECEDING)
                ) sp
                OFFSET 0
            ) sp
            GROUP BY k
        ) g
        JOIN {_MOVED} m ON m.k = g.k
        WHERE g.days > 0
        OFFSET 0
    ) li
    """


async def lines_select(
    conn: AsyncConnection, fund_code: str, period: Period, *, bank_code: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The lines' statement (text) and its parameters, for `compute_fund_lines` or an
    `INSERT … SELECT`; first sets the batch's settings and fills the temporary table of moved
    loans, both for the rest of the transaction (the table is dropped at commit): run the statement
    in the same transaction.

    The two statements read the repayments and spells apart: under READ COMMITTED, a repayment day
    or a spell inside the period recorded by another transaction between them would be summed as
    the loan's one day (or spell). A caller that must exclude that runs them in a REPEATABLE READ
    transaction (the drafts job does not: its figures are announced, never stored)."""
    await batch_settings(conn)
    fund = await fund_policies_of(conn, fund_code)
    params: dict[str, Any] = {"fund_code": fund_code, "ps": period.start, "pe": period.end}
    compensated = await conn.scalar(
        sa.select(
            sa.exists().where(
                compensation_claims.c.fund_code == fund_code, compensation_claims.c.status == "paid"
            )
        )
    )
    plan = _plan(fund, period, bank_code, params, compensated=bool(compensated))
    params.update(principal_max=plan.principal_max, rate_max=_RATE_MAX)
    moved = await _create_moved(conn, plan, params)
    branches = [_moved_sql(plan)] if moved else []
    if plan.short:
        # Without moved loans, looking every loan up in an empty table would still cost a step each.
        branches.append(_closed_sql(plan, moved=moved))
    if not branches:  # no loan at all
        branches.append(f"SELECT * FROM ({_moved_sql(plan)}) li")
    return f"SELECT * FROM ({' UNION ALL '.join(branches)}) li", params


# The statement's cost estimate makes PostgreSQL compile it (JIT), which takes longer than running it;
# and hashing a period's repayments by loan takes some 60 MB for 200,000 loans repaid in the period,
# which the default work_mem (4 MB) would spill to disk. A batch runs now and then, one at a time.
_SETTINGS = sa.text("SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true)")


async def batch_settings(conn: AsyncConnection) -> None:
    """For the rest of the transaction: the settings the batch statements run under."""
    await conn.execute(_SETTINGS)


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
