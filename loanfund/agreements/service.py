"""Agreements between a fund and a partner bank, and the money the fund places with the bank.

Locking: every change to a pair's figures (deposit, reserved, outstanding) or to whether it may take
new guarantees holds the pair's `fund_banks` row lock (`queries.lock_pair`), taken before any ledger
row. Keep that order in new code — pair lock, then guarantee rows, then ledger accounts — so that
concurrent transactions queue instead of deadlocking.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund import banks, ledger
from loanfund.agreements import queries
from loanfund.agreements.capacity import agreement_status, capacity_fen, live_figures, pair_capacity
from loanfund.clock import not_in_future, utcnow
from loanfund.db.tables import agreements, fund_banks
from loanfund.errors import (
    Duplicate,
    InsufficientDeposit,
    InsufficientFundCash,
    InvalidState,
    LeverageExceeded,
    LeverageMultipleTooHigh,
    NotFound,
    invalid,
)
from loanfund.funds import queries as fund_queries
from loanfund.funds.service import fund_policy
from loanfund.ids import new_id
from loanfund.ledger import accounts
from loanfund.money import Amount, format_fen, format_pct, require_positive
from loanfund.uow import Tx

MAX_CLAIM_AFTER_DAYS = 3650


def _check_pct(field: str, value: Decimal) -> None:
    if not 0 < value <= 100:
        raise invalid(field, "must be more than 0 and at most 100")


def _overlaps(row: Any, start: date, end: date | None) -> bool:
    return (row.effective_to is None or row.effective_to >= start) and (
        end is None or row.effective_from <= end
    )


async def _ensure_pair(conn: AsyncConnection, fund_code: str, bank_code: str) -> None:
    values = {"fund_code": fund_code, "bank_code": bank_code, "created_at": utcnow()}
    if conn.dialect.name == "postgresql":
        await conn.execute(postgresql.insert(fund_banks).values(values).on_conflict_do_nothing())
    else:
        await conn.execute(sqlite.insert(fund_banks).values(values).on_conflict_do_nothing())


async def create_agreement(
    tx: Tx,
    *,
    fund_code: str,
    bank_code: str,
    leverage_multiple: Decimal,
    fund_loss_share_pct: Decimal,
    claim_after_days: int,
    claim_covers_interest: bool,
    effective_from: date,
    effective_to: date | None = None,
    compensation_suspend_pct: Decimal | None = None,
) -> str:
    """A new agreement; refused if another agreement of the pair is in force on any day of its period."""
    conn = tx.conn
    fund = await fund_queries.get_fund(conn, fund_code)
    try:
        await banks.get_bank(conn, bank_code)
    except NotFound:
        raise invalid("bank_code", f"no bank {bank_code}") from None
    if not leverage_multiple.is_finite() or leverage_multiple <= 0:
        raise invalid("leverage_multiple", "must be more than zero")
    if leverage_multiple != round(leverage_multiple, 4):
        raise invalid("leverage_multiple", "may have at most 4 decimals")
    _check_pct("fund_loss_share_pct", fund_loss_share_pct)
    if not 1 <= claim_after_days <= MAX_CLAIM_AFTER_DAYS:
        raise invalid("claim_after_days", f"must be between 1 and {MAX_CLAIM_AFTER_DAYS}")
    # The contract knows no "not yet started" status, so an agreement starts today at the latest.
    not_in_future(effective_from, "effective_from", tx.today)
    if effective_to is not None and effective_to < effective_from:
        raise invalid("effective_to", "must not be before effective_from")
    if compensation_suspend_pct is not None:
        _check_pct("compensation_suspend_pct", compensation_suspend_pct)

    rules = await fund_policy(conn, fund_code, effective_from)
    multiple_max = rules.integer("leverage_multiple_max")
    if leverage_multiple > multiple_max:
        raise LeverageMultipleTooHigh(
            f"the fund's policy ({rules.edition}) allows a multiple of at most {multiple_max}",
            leverage_multiple=format_pct(leverage_multiple),
            leverage_multiple_max=str(multiple_max),
            policy_edition=rules.edition,
        )
    if compensation_suspend_pct is None:
        compensation_suspend_pct = rules.percent("compensation_rate_suspend_pct")

    await _ensure_pair(conn, fund_code, bank_code)
    await queries.lock_pair(conn, fund_code, bank_code)
    await _check_takes_over(conn, fund_code, bank_code, leverage_multiple, effective_from, tx.today)
    for existing in await queries.pair_agreements(conn, fund_code, bank_code):
        if _overlaps(existing, effective_from, effective_to):
            raise Duplicate(
                f"fund {fund_code} already has an agreement with bank {bank_code} in force in that period",
                agreement_id=existing.id,
            )
    agreement_id = new_id("agr")
    values = {
        "fund_code": fund_code,
        "bank_code": bank_code,
        "leverage_multiple": leverage_multiple,
        "fund_loss_share_pct": fund_loss_share_pct,
        "claim_after_days": claim_after_days,
        "claim_covers_interest": claim_covers_interest,
        "compensation_suspend_pct": compensation_suspend_pct,
        "effective_from": effective_from,
        "effective_to": effective_to,
    }
    await conn.execute(
        agreements.insert().values(
            id=agreement_id, suspended=False, created_at=utcnow(), created_by=tx.actor.client_id, **values
        )
    )
    tx.audit(
        "agreement.created",
        "agreement",
        agreement_id,
        {key: value if isinstance(value, bool | int) else _text(value) for key, value in values.items()},
        region_code=fund.region_code,
    )
    return agreement_id


async def _check_takes_over(
    conn: AsyncConnection,
    fund_code: str,
    bank_code: str,
    multiple: Decimal,
    effective_from: date,
    today: date,
) -> None:
    """A new agreement that will govern the pair must carry what the pair already has outstanding and
    reserved: only compensation may push headroom below zero (domain.md section 5)."""
    latest = await queries.latest_started(conn, fund_code, bank_code, today)
    if latest is not None and latest.effective_from >= effective_from:
        return
    deposit_fen, outstanding_fen, reserved_fen = await live_figures(conn, fund_code, bank_code, today)
    capacity = capacity_fen(deposit_fen, multiple)
    used = outstanding_fen + reserved_fen
    if used > capacity:
        raise LeverageExceeded(
            "under this multiple the deposit cannot carry the outstanding and reserved guarantees",
            headroom=Amount(capacity - used),
            deposit=Amount(deposit_fen),
            leverage_multiple=format_pct(multiple),
            capacity=Amount(capacity),
            outstanding=Amount(outstanding_fen),
            reserved=Amount(reserved_fen),
        )


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format_pct(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


async def _locked_agreement(conn: AsyncConnection, agreement_id: str) -> Any:
    """The agreement, read again after its pair is locked so that no concurrent change is missed."""
    row = await queries.get_agreement(conn, agreement_id)
    await queries.lock_pair(conn, row.fund_code, row.bank_code)
    return await queries.get_agreement(conn, agreement_id)


async def suspend(tx: Tx, agreement_id: str, *, reason: str) -> None:
    """No new guarantees under the agreement until it is resumed; existing ones are untouched."""
    conn = tx.conn
    if not reason.strip():
        raise invalid("reason", "must not be empty")
    row = await _locked_agreement(conn, agreement_id)
    status = agreement_status(row, tx.today)
    if status != "active":
        raise InvalidState(f"agreement {agreement_id} is {status}", status=status)
    await conn.execute(
        agreements.update()
        .where(agreements.c.id == agreement_id)
        .values(suspended=True, suspended_reason=reason, suspended_at=utcnow())
    )
    fund = await fund_queries.get_fund(conn, row.fund_code)
    tx.audit(
        "agreement.suspended",
        "agreement",
        agreement_id,
        {"reason": reason},
        region_code=fund.region_code,
    )
    tx.emit(
        "agreement_suspended",
        fund_code=row.fund_code,
        region_code=fund.region_code,
        bank_code=row.bank_code,
        data={
            "agreement_id": agreement_id,
            "fund_code": row.fund_code,
            "bank_code": row.bank_code,
            "reason": reason,
        },
    )


async def resume(tx: Tx, agreement_id: str, *, reason: str | None = None) -> None:
    conn = tx.conn
    row = await _locked_agreement(conn, agreement_id)
    status = agreement_status(row, tx.today)
    if status != "suspended":
        raise InvalidState(f"agreement {agreement_id} is {status}, not suspended", status=status)
    await conn.execute(
        agreements.update()
        .where(agreements.c.id == agreement_id)
        .values(suspended=False, suspended_reason=None, suspended_at=None)
    )
    fund = await fund_queries.get_fund(conn, row.fund_code)
    tx.audit(
        "agreement.resumed",
        "agreement",
        agreement_id,
        {"reason": reason, "suspended_reason": row.suspended_reason},
        region_code=fund.region_code,
    )
    tx.emit(
        "agreement_resumed",
        fund_code=row.fund_code,
        region_code=fund.region_code,
        bank_code=row.bank_code,
        data={"agreement_id": agreement_id, "fund_code": row.fund_code, "bank_code": row.bank_code},
    )


async def deposit(
    tx: Tx,
    agreement_id: str,
    *,
    amount_fen: int,
    deposited_on: date,
    reference: str,
) -> str:
    """Move fund cash to `deposit:{bank}`; returns the journal entry id."""
    conn = tx.conn
    await tx.settle()
    require_positive(amount_fen)
    not_in_future(deposited_on, "deposited_on", tx.today)
    row = await _locked_agreement(conn, agreement_id)
    status = agreement_status(row, tx.today)
    if status == "ended":
        raise InvalidState(f"agreement {agreement_id} ended on {row.effective_to}", status=status)
    if deposited_on < row.effective_from:
        raise invalid("deposited_on", f"is before the agreement started ({row.effective_from})")
    cash = await ledger.balance(conn, row.fund_code, accounts.CASH, for_update=True)
    if cash < amount_fen:
        raise InsufficientFundCash(
            "the fund has not that much cash that is not placed at a bank",
            cash=Amount(cash),
            amount=Amount(amount_fen),
        )
    entry_id = await ledger.post(
        tx,
        fund_code=row.fund_code,
        entry_date=deposited_on,
        kind="deposit",
        description=f"deposit at {row.bank_code} {reference}",
        reference=reference,
        lines=ledger.transfer(accounts.deposit(row.bank_code), accounts.CASH, amount_fen),
    )
    await _record_movement(tx, row, "agreement.deposit", amount_fen, deposited_on, reference, entry_id)
    return entry_id


async def withdraw(
    tx: Tx,
    agreement_id: str,
    *,
    amount_fen: int,
    withdrawn_on: date,
    reference: str,
) -> str:
    """Move money at the bank back to fund cash, unless what remains cannot carry outstanding + reserved."""
    conn = tx.conn
    await tx.settle()
    require_positive(amount_fen)
    not_in_future(withdrawn_on, "withdrawn_on", tx.today)
    row = await _locked_agreement(conn, agreement_id)
    # The deposit belongs to the pair, so the multiple that limits it is the pair's current one.
    now = await pair_capacity(conn, row.fund_code, row.bank_code, today=tx.today)
    if amount_fen > now.deposit_fen:
        raise InsufficientDeposit(
            f"the fund has only {format_fen(now.deposit_fen)} yuan at bank {row.bank_code}",
            deposit=Amount(now.deposit_fen),
            amount=Amount(amount_fen),
        )
    capacity_after = capacity_fen(now.deposit_fen - amount_fen, now.leverage_multiple)
    if now.used_fen > capacity_after:
        raise LeverageExceeded(
            "what would remain at the bank cannot carry its outstanding and reserved guarantees",
            headroom=Amount(now.headroom_fen),
            amount=Amount(amount_fen),
            deposit=Amount(now.deposit_fen),
            leverage_multiple=format_pct(now.leverage_multiple),
            outstanding=Amount(now.outstanding_fen),
            reserved=Amount(now.reserved_fen),
            capacity_after=Amount(capacity_after),
            headroom_after=Amount(capacity_after - now.used_fen),
            max_withdrawal=Amount(now.max_withdrawal_fen),
        )
    entry_id = await ledger.post(
        tx,
        fund_code=row.fund_code,
        entry_date=withdrawn_on,
        kind="withdrawal",
        description=f"withdrawal from {row.bank_code} {reference}",
        reference=reference,
        lines=ledger.transfer(accounts.CASH, accounts.deposit(row.bank_code), amount_fen),
    )
    await _record_movement(tx, row, "agreement.withdrawal", amount_fen, withdrawn_on, reference, entry_id)
    return entry_id


async def _record_movement(
    tx: Tx,
    agreement: Any,
    action: str,
    amount_fen: int,
    on: date,
    reference: str,
    entry_id: str,
) -> None:
    conn = tx.conn
    fund = await fund_queries.get_fund(conn, agreement.fund_code)
    tx.audit(
        action,
        "agreement",
        agreement.id,
        {
            "fund_code": agreement.fund_code,
            "bank_code": agreement.bank_code,
            "amount_fen": amount_fen,
            "on": on.isoformat(),
            "reference": reference,
            "entry_id": entry_id,
        },
        region_code=fund.region_code,
    )
