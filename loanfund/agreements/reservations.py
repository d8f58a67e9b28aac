"""Guarantee reservations against a fund × bank pair's headroom (domain.md section 5).

Life of a reservation: `reserve` (approval) → `convert` (disbursement: the principal becomes
outstanding, the rest is released) or `release` (rejection, withdrawal) or lapse (no disbursement by
`expires_on`). From the day after `expires_on` a reservation still marked `reserved` counts as lapsed
everywhere — capacity, `get_reservation`, `convert` — whether or not `lapse_expired` has run; the job
only makes the ledger and the status catch up.

Every step is a ledger entry on the memo accounts, so capacity can be rebuilt from the ledger alone:

    reserve   Dr memo:reserved:{bank}     Cr memo:commitments
    convert   Dr memo:outstanding:{bank}  Cr memo:reserved:{bank}   (principal)
              Dr memo:commitments         Cr memo:reserved:{bank}   (unused part)
    release   the reserve entry reversed, dated the release day
    lapse     the reserve entry reversed, dated the day after expires_on
    reduce    Dr memo:commitments         Cr memo:outstanding:{bank}

Each function works inside the caller's transaction and takes the pair lock (see service.py) before
reading capacity or writing, so two concurrent approvals can never both take the same headroom. Call
them before posting other entries of the fund in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund import audit, events, ledger
from loanfund.agreements import queries
from loanfund.agreements.capacity import Capacity, capacity_from_ledger, pair_capacity
from loanfund.audit import Actor
from loanfund.clock import business_date, not_in_future, utcnow
from loanfund.db.tables import guarantees
from loanfund.errors import (
    AgreementSuspended,
    Duplicate,
    GuaranteeLapsed,
    InvalidState,
    LeverageExceeded,
    NoAgreement,
    PrincipalExceedsGuarantee,
    ValidationFailed,
)
from loanfund.funds import queries as fund_queries
from loanfund.funds.service import fund_policy
from loanfund.ids import new_id
from loanfund.ledger import accounts
from loanfund.money import CURRENCY, Amount, format_fen

__all__ = [
    "Capacity",
    "Reservation",
    "capacity_from_ledger",
    "convert",
    "get_reservation",
    "lapse_expired",
    "pair_capacity",
    "reduce_outstanding",
    "release",
    "reserve",
]

RESERVED, CONVERTED, RELEASED, LAPSED = "reserved", "converted", "released", "lapsed"


@dataclass(frozen=True)
class Reservation:
    id: str
    fund_code: str
    bank_code: str
    agreement_id: str
    amount_fen: int
    approved_on: date
    expires_on: date
    status: str  # reserved | converted | released | lapsed (effective, as of the business date)
    converted_fen: int


def _effective_status(row: Any, today: date) -> str:
    if row.status == RESERVED and row.expires_on < today:
        return LAPSED
    return str(row.status)


def _reservation(row: Any, today: date) -> Reservation:
    return Reservation(
        id=row.id,
        fund_code=row.fund_code,
        bank_code=row.bank_code,
        agreement_id=row.agreement_id,
        amount_fen=row.amount_fen,
        approved_on=row.approved_on,
        expires_on=row.expires_on,
        status=_effective_status(row, today),
        converted_fen=row.converted_fen,
    )


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([{"field": field, "message": message}])


def _positive(field: str, fen: int) -> None:
    if isinstance(fen, bool) or not isinstance(fen, int) or fen <= 0:
        raise _invalid(field, "must be a positive whole number of fen")


async def _region(conn: AsyncConnection, fund_code: str) -> str:
    fund = await fund_queries.get_fund(conn, fund_code)
    return str(fund.region_code)


async def reserve(
    conn: AsyncConnection,
    actor: Actor,
    *,
    fund_code: str,
    bank_code: str,
    amount_fen: int,
    approved_on: date,
    application_id: str | None = None,
) -> Reservation:
    """Take `amount_fen` of the pair's headroom for a guarantee approved on `approved_on`."""
    _positive("amount", amount_fen)
    not_in_future(approved_on, "approved_on")
    today = business_date()
    if not await queries.lock_pair(conn, fund_code, bank_code):
        raise NoAgreement(
            f"fund {fund_code} has no agreement with bank {bank_code}",
            fund_code=fund_code,
            bank_code=bank_code,
        )
    agreement = await queries.latest_started(conn, fund_code, bank_code, approved_on)
    # In force on the approval date and still today: an ended agreement takes no new guarantees.
    if agreement is None or (agreement.effective_to is not None and agreement.effective_to < today):
        raise NoAgreement(
            f"no agreement between fund {fund_code} and bank {bank_code} is in force on {approved_on}",
            fund_code=fund_code,
            bank_code=bank_code,
            approved_on=approved_on.isoformat(),
        )
    if agreement.suspended:
        raise AgreementSuspended(
            f"agreement {agreement.id} is suspended: {agreement.suspended_reason}",
            agreement_id=agreement.id,
            reason=agreement.suspended_reason,
        )
    rules = await fund_policy(conn, fund_code, approved_on)
    expires_on = approved_on + timedelta(days=rules.integer("reservation_days"))
    if expires_on < today:
        raise _invalid("approved_on", f"a reservation approved then would have lapsed after {expires_on}")
    capacity = await pair_capacity(conn, fund_code, bank_code, today=today)
    if amount_fen > capacity.headroom_fen:
        raise LeverageExceeded(
            f"bank {bank_code} has {format_fen(capacity.headroom_fen)} yuan of headroom",
            headroom=Amount(capacity.headroom_fen),
            amount=Amount(amount_fen),
        )
    if application_id is not None:
        existing = await queries.guarantee_for_application(conn, application_id)
        if existing is not None:
            raise Duplicate(f"application {application_id} already has a reservation", guarantee_id=existing)

    entry_id = await ledger.post_entry(
        conn,
        fund_code=fund_code,
        entry_date=approved_on,
        kind="guarantee_reserved",
        description=f"guarantee reserved at {bank_code}",
        reference=application_id,
        lines=ledger.transfer(accounts.reserved(bank_code), accounts.COMMITMENTS, amount_fen),
        actor=actor,
    )
    reservation = Reservation(
        id=new_id("gua"),
        fund_code=fund_code,
        bank_code=bank_code,
        agreement_id=agreement.id,
        amount_fen=amount_fen,
        approved_on=approved_on,
        expires_on=expires_on,
        status=RESERVED,
        converted_fen=0,
    )
    await conn.execute(
        guarantees.insert().values(
            id=reservation.id,
            fund_code=fund_code,
            bank_code=bank_code,
            agreement_id=agreement.id,
            application_id=application_id,
            amount_fen=amount_fen,
            approved_on=approved_on,
            expires_on=expires_on,
            status=RESERVED,
            converted_fen=0,
            reserve_entry_id=entry_id,
            created_at=utcnow(),
        )
    )
    await audit.record(
        conn,
        actor,
        "guarantee.reserved",
        "guarantee",
        reservation.id,
        {
            "fund_code": fund_code,
            "bank_code": bank_code,
            "agreement_id": agreement.id,
            "application_id": application_id,
            "amount_fen": amount_fen,
            "approved_on": approved_on.isoformat(),
            "expires_on": expires_on.isoformat(),
            "entry_id": entry_id,
        },
        region_code=await _region(conn, fund_code),
    )
    return reservation


async def get_reservation(conn: AsyncConnection, reservation_id: str) -> Reservation:
    return _reservation(await queries.get_guarantee(conn, reservation_id), business_date())


async def _locked(conn: AsyncConnection, reservation_id: str) -> Any:
    """The reservation, read again after its pair is locked so that no concurrent change is missed."""
    row = await queries.get_guarantee(conn, reservation_id)
    await queries.lock_pair(conn, row.fund_code, row.bank_code)
    return await queries.get_guarantee(conn, reservation_id, for_update=True)


async def _settle(
    conn: AsyncConnection,
    reservation_id: str,
    *,
    status: str,
    settled_on: date,
    entry_id: str,
    converted_fen: int = 0,
) -> None:
    # Compare-and-set: only a reservation still `reserved` may be settled, and only once.
    result = await conn.execute(
        guarantees.update()
        .where(guarantees.c.id == reservation_id, guarantees.c.status == RESERVED)
        .values(status=status, settled_on=settled_on, settle_entry_id=entry_id, converted_fen=converted_fen)
    )
    if result.rowcount != 1:
        raise InvalidState(f"guarantee reservation {reservation_id} is no longer reserved")


async def convert(
    conn: AsyncConnection, actor: Actor, reservation_id: str, *, principal_fen: int, on: date
) -> Reservation:
    """Disbursement: the principal becomes outstanding at the bank, the unused part is released."""
    _positive("principal", principal_fen)
    not_in_future(on, "on")
    row = await _locked(conn, reservation_id)
    current = _reservation(row, business_date())
    if principal_fen > row.amount_fen:
        raise PrincipalExceedsGuarantee(
            "the principal is more than the guarantee approved",
            principal=Amount(principal_fen),
            guarantee=Amount(row.amount_fen),
        )
    if current.status == LAPSED or (current.status == RESERVED and on > row.expires_on):
        raise GuaranteeLapsed(
            f"the reservation lapsed after {row.expires_on}", expires_on=row.expires_on.isoformat()
        )
    if current.status != RESERVED:
        raise InvalidState(
            f"guarantee reservation {reservation_id} is {current.status}", status=current.status
        )
    if on < row.approved_on:
        raise _invalid("on", f"is before the guarantee was approved ({row.approved_on})")

    unused = row.amount_fen - principal_fen
    lines = [
        ledger.debit(accounts.outstanding(row.bank_code), principal_fen),
        ledger.credit(accounts.reserved(row.bank_code), row.amount_fen),
    ]
    if unused:
        lines.append(ledger.debit(accounts.COMMITMENTS, unused))
    entry_id = await ledger.post_entry(
        conn,
        fund_code=row.fund_code,
        entry_date=on,
        kind="guarantee_converted",
        description=f"loan disbursed under guarantee {reservation_id}",
        reference=row.application_id,
        lines=lines,
        actor=actor,
    )
    await _settle(
        conn, reservation_id, status=CONVERTED, settled_on=on, entry_id=entry_id, converted_fen=principal_fen
    )
    await audit.record(
        conn,
        actor,
        "guarantee.converted",
        "guarantee",
        reservation_id,
        {"principal_fen": principal_fen, "released_fen": unused, "on": on.isoformat(), "entry_id": entry_id},
        region_code=await _region(conn, row.fund_code),
    )
    return _reservation(await queries.get_guarantee(conn, reservation_id), business_date())


async def release(
    conn: AsyncConnection, actor: Actor, reservation_id: str, *, on: date, reason: str
) -> Reservation:
    """Rejection or withdrawal: the whole reservation goes back to headroom. A lapsed one stays as it is."""
    if not reason.strip():
        raise _invalid("reason", "must not be empty")
    not_in_future(on, "on")
    row = await _locked(conn, reservation_id)
    current = _reservation(row, business_date())
    if current.status == LAPSED:
        return current
    if current.status != RESERVED:
        raise InvalidState(
            f"guarantee reservation {reservation_id} is {current.status}", status=current.status
        )
    if on < row.approved_on:
        raise _invalid("on", f"is before the guarantee was approved ({row.approved_on})")
    entry_id = await ledger.reverse_entry(
        conn,
        row.reserve_entry_id,
        entry_date=on,
        reason=f"guarantee {reservation_id} released: {reason}",
        actor=actor,
    )
    await _settle(conn, reservation_id, status=RELEASED, settled_on=on, entry_id=entry_id)
    await audit.record(
        conn,
        actor,
        "guarantee.released",
        "guarantee",
        reservation_id,
        {"reason": reason, "on": on.isoformat(), "entry_id": entry_id},
        region_code=await _region(conn, row.fund_code),
    )
    return _reservation(await queries.get_guarantee(conn, reservation_id), business_date())


async def lapse_expired(conn: AsyncConnection, actor: Actor, *, today: date) -> int:
    """Mark every reservation past its last day as lapsed and release it in the ledger.

    Idempotent and safe in two processes at once: each row is claimed by a conditional update, so a
    second run (or a concurrent one, once the first commits) finds nothing left to do.
    """
    rows = await queries.expired_reserved(conn, today)
    # All pairs at once and in key order: locking them one by one between postings could deadlock
    # with an approval that holds a pair and waits for the fund's shared memo account.
    await queries.lock_pairs(conn, [(row.fund_code, row.bank_code) for row in rows])
    count = 0
    for row in rows:
        lapsed_on = row.expires_on + timedelta(days=1)
        claimed = await conn.execute(
            guarantees.update()
            .where(guarantees.c.id == row.id, guarantees.c.status == RESERVED)
            .values(status=LAPSED, settled_on=lapsed_on)
        )
        if claimed.rowcount != 1:
            continue
        entry_id = await ledger.reverse_entry(
            conn, row.reserve_entry_id, entry_date=lapsed_on, reason=f"guarantee {row.id} lapsed", actor=actor
        )
        await conn.execute(
            guarantees.update().where(guarantees.c.id == row.id).values(settle_entry_id=entry_id)
        )
        await audit.record(
            conn,
            actor,
            "guarantee.lapsed",
            "guarantee",
            row.id,
            {"expires_on": row.expires_on.isoformat(), "entry_id": entry_id},
            region_code=row.region_code,
        )
        await events.emit(
            conn,
            "guarantee_lapsed",
            fund_code=row.fund_code,
            region_code=row.region_code,
            bank_code=row.bank_code,
            data={
                "guarantee_id": row.id,
                "application_id": row.application_id,
                "fund_code": row.fund_code,
                "bank_code": row.bank_code,
                "currency": CURRENCY,
                "amount": format_fen(row.amount_fen),
                "expires_on": row.expires_on.isoformat(),
            },
        )
        count += 1
    return count


async def reduce_outstanding(
    conn: AsyncConnection,
    actor: Actor,
    *,
    fund_code: str,
    bank_code: str,
    amount_fen: int,
    on: date,
    reason: str,
    reference: str | None = None,
) -> None:
    """Principal leaves the pair's outstanding (repayment, compensation, write-off)."""
    _positive("amount", amount_fen)
    not_in_future(on, "on")
    if not reason.strip():
        raise _invalid("reason", "must not be empty")
    if not await queries.lock_pair(conn, fund_code, bank_code):
        raise NoAgreement(
            f"fund {fund_code} has no agreement with bank {bank_code}",
            fund_code=fund_code,
            bank_code=bank_code,
        )
    outstanding = await ledger.balance(conn, fund_code, accounts.outstanding(bank_code))
    if amount_fen > outstanding:
        raise InvalidState(
            f"bank {bank_code} has less guaranteed outstanding than that",
            outstanding=Amount(outstanding),
            amount=Amount(amount_fen),
        )
    entry_id = await ledger.post_entry(
        conn,
        fund_code=fund_code,
        entry_date=on,
        kind="outstanding_reduced",
        description=f"guaranteed outstanding at {bank_code} reduced: {reason}",
        reference=reference,
        lines=ledger.transfer(accounts.COMMITMENTS, accounts.outstanding(bank_code), amount_fen),
        actor=actor,
    )
    await audit.record(
        conn,
        actor,
        "guarantee.outstanding_reduced",
        "fund",
        fund_code,
        {
            "bank_code": bank_code,
            "amount_fen": amount_fen,
            "on": on.isoformat(),
            "reason": reason,
            "reference": reference,
            "entry_id": entry_id,
        },
        region_code=await _region(conn, fund_code),
    )
