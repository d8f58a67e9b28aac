"""Compensation rates and what crossing a threshold does (domain.md 5 and 7).

Compensation rate over the trailing 12 months = compensation paid in those months ÷ principal of the
guarantees released in those months (repaid in full or compensated) [ours, after the guarantee
industry's 代偿率 = 当期代偿额 / 当期解除担保额]. The window ending on day d is (d − 12 months, d].
An agreement whose rate goes above its `compensation_suspend_pct` (policy default 5%) is suspended for
new guarantees in the transaction of the payment that took it there; a fund whose rate over all its
banks goes above `FUND_RED_FLAG_PCT` raises a red flag (an event for its managers, shown in reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.claims import queries
from loanfund.clock import utcnow
from loanfund.db.tables import agreements
from loanfund.funds.service import fund_policy
from loanfund.money import CURRENCY, format_fen, format_pct, percent_of
from loanfund.terms import add_months
from loanfund.uow import Tx

# "Annual compensation above 20% of the loan balance is a red flag" [L]; measured with the same ratio.
FUND_RED_FLAG_PCT = Decimal(20)
WINDOW_MONTHS = 12
SUSPENDED_REASON = "compensation_rate"


@dataclass(frozen=True)
class CompensationRate:
    window_after: date  # exclusive
    window_through: date  # inclusive
    compensation_paid_fen: int
    released_principal_fen: int

    @property
    def ratio(self) -> Fraction | None:
        if self.released_principal_fen <= 0:
            return None
        return Fraction(self.compensation_paid_fen * 100, self.released_principal_fen)

    @property
    def rate_pct(self) -> Decimal | None:
        """The rate in percent to 4 places, half-up (None while nothing was released)."""
        if self.released_principal_fen <= 0:
            return None
        return percent_of(self.compensation_paid_fen, self.released_principal_fen)

    def above(self, threshold_pct: Decimal) -> bool:
        ratio = self.ratio
        return ratio is not None and ratio > Fraction(threshold_pct)


def window_start(through: date) -> date:
    return add_months(through, -WINDOW_MONTHS)


async def compensation_rate(
    conn: AsyncConnection, fund_code: str, bank_code: str | None, *, as_of: date
) -> CompensationRate:
    """The trailing-12-month rate of a fund at one bank (or at all its banks, `bank_code=None`)."""
    after = window_start(as_of)
    return CompensationRate(
        window_after=after,
        window_through=as_of,
        compensation_paid_fen=await queries.compensation_paid_fen(conn, fund_code, bank_code, after, as_of),
        released_principal_fen=await queries.released_principal_fen(conn, fund_code, bank_code, after, as_of),
    )


def rate_facts(rate: CompensationRate) -> dict[str, Any]:
    return {
        "compensation_rate_pct": None if rate.rate_pct is None else format_pct(rate.rate_pct),
        "compensation_paid": format_fen(rate.compensation_paid_fen),
        "released_principal": format_fen(rate.released_principal_fen),
        "window_after": rate.window_after.isoformat(),
        "window_through": rate.window_through.isoformat(),
        "currency": CURRENCY,
    }


@dataclass(frozen=True)
class RiskOutcome:
    agreement_rate: CompensationRate
    threshold_pct: Decimal
    suspended: bool  # suspended by this payment
    fund_rate: CompensationRate
    red_flag_raised: bool  # the fund crossed the red flag with this payment


async def suspend_for_rate(
    tx: Tx,
    *,
    agreement_id: str,
    facts: dict[str, Any],
    fund_code: str,
    bank_code: str | None,
    region_code: str | None,
) -> bool:
    """Suspend the agreement for new guarantees because its compensation rate is over its threshold:
    with an `agreement_suspended` event (reason `compensation_rate`) and an audit record. Whether it
    did: an agreement suspended meanwhile (a manager, a payment, the daily job read it unlocked) is
    left as it is and announced once only."""
    changed = await tx.conn.execute(
        agreements.update()
        .where(agreements.c.id == agreement_id, agreements.c.suspended.is_(False))
        .values(suspended=True, suspended_reason=SUSPENDED_REASON, suspended_at=utcnow())
    )
    if changed.rowcount != 1:
        return False
    tx.audit(
        "agreement.suspended",
        "agreement",
        agreement_id,
        {"reason": SUSPENDED_REASON, "automatic": True, **facts},
        region_code=region_code,
    )
    tx.emit(
        "agreement_suspended",
        fund_code=fund_code,
        region_code=region_code,
        bank_code=bank_code,
        data={
            "agreement_id": agreement_id,
            "fund_code": fund_code,
            "bank_code": bank_code,
            "reason": SUSPENDED_REASON,
            **facts,
        },
    )
    return True


async def suspend_threshold_pct(conn: AsyncConnection, agreement: Any, on: date) -> Decimal:
    """The compensation rate above which the agreement is suspended: its own, else its fund's
    policy's in force on `on`."""
    if agreement.compensation_suspend_pct is not None:
        return Decimal(agreement.compensation_suspend_pct)
    return (await fund_policy(conn, agreement.fund_code, on)).percent("compensation_rate_suspend_pct")


async def after_payment(
    tx: Tx,
    *,
    agreement: Any,
    fund_code: str,
    bank_code: str,
    region_code: str,
    paid_fen: int,
    released_fen: int,
) -> RiskOutcome:
    """Measure the rates a payment just changed and act on them, in the payment's transaction.

    The caller holds the pair lock, which guards the agreement's suspension too. `paid_fen` and
    `released_fen` are this payment's own figures, to tell whether the fund was over its flag before.
    """
    today = tx.today
    conn = tx.conn
    rate = await compensation_rate(conn, fund_code, bank_code, as_of=today)
    threshold = await suspend_threshold_pct(conn, agreement, today)
    suspended = False
    if rate.above(threshold) and not agreement.suspended:
        facts = {**rate_facts(rate), "threshold_pct": format_pct(threshold)}
        suspended = await suspend_for_rate(
            tx,
            agreement_id=agreement.id,
            facts=facts,
            fund_code=fund_code,
            bank_code=bank_code,
            region_code=region_code,
        )

    fund_rate = await compensation_rate(conn, fund_code, None, as_of=today)
    before = CompensationRate(
        fund_rate.window_after,
        fund_rate.window_through,
        fund_rate.compensation_paid_fen - paid_fen,
        fund_rate.released_principal_fen - released_fen,
    )
    red_flag = fund_rate.above(FUND_RED_FLAG_PCT) and not before.above(FUND_RED_FLAG_PCT)
    if red_flag:
        facts = {**rate_facts(fund_rate), "red_flag_pct": format_pct(FUND_RED_FLAG_PCT)}
        tx.audit("fund.compensation_red_flag", "fund", fund_code, facts, region_code=region_code)
        tx.emit(
            "compensation_red_flag",
            fund_code=fund_code,
            region_code=region_code,
            bank_code=None,
            data={"fund_code": fund_code, **facts},
        )
    return RiskOutcome(rate, threshold, suspended, fund_rate, red_flag)
