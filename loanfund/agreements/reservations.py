"""Guarantee reservations against a fund × bank pair's headroom (domain.md section 5).

Life of a reservation: `reserve` (approval) → `convert` (disbursement: the principal becomes
outstanding, the rest is released) or `release` (rejection, withdrawal) or lapse (no disbursement by
`expires_on`). From the day after `expires_on` a reservation still marked `reserved` counts as lapsed
everywhere — capacity, `get_reservation`, `convert` — whether or not `lapse_expired` has run; the job
only makes the ledger and the status catch up.

Every step is a ledger entry on the memo accounts, so capacity can be rebuilt from the ledger alone:

    reserve   Dr memo:reserved:{bank}     Cr memo:commitments:{bank}
    convert   Dr memo:outstanding:{bank}  Cr memo:reserved:{bank}   (principal)
              Dr memo:commitments:{bank}  Cr memo:reserved:{bank}   (unused part)
    release   the reserve entry reversed, dated the release day
    lapse     the reserve entry reversed, dated the day after expires_on
    reduce    Dr memo:commitments:{bank}  Cr memo:outstanding:{bank}

Each function works in the caller's unit of work (`loanfund.uow.Tx`) and takes the pair lock (see
service.py) before reading capacity or writing, so two concurrent approvals can never both take the
same headroom. The memo postings of reserve, convert and reduce are written when the transaction
commits, after its other writes: every request at the bank posts to the same balance rows, which stay
locked until commit (docs/performance.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund import ledger, policy
from loanfund.agreements import queries
from loanfund.agreements.capacity import (
    FIGURE_COLUMNS,
    Capacity,
    capacity_from_figures,
    capacity_from_ledger,
    figure_params,
    figures_from_row,
    governing_agreement,
    pair_capacity,
)
from loanfund.agreements.queries import ReservationStatus
from loanfund.clock import not_in_future, utcnow
from loanfund.db.tables import agreements, fund_banks, fund_policies, funds, guarantees
from loanfund.errors import (
    AgreementSuspended,
    Duplicate,
    GuaranteeLapsed,
    InvalidState,
    LeverageExceeded,
    NoAgreement,
    NotFound,
    PrincipalExceedsGuarantee,
    invalid,
)
from loanfund.ids import new_id
from loanfund.ledger import accounts
from loanfund.money import CURRENCY, Amount, format_fen, require_positive
from loanfund.uow import Tx

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

RESERVED, CONVERTED, RELEASED, LAPSED = (
    ReservationStatus.RESERVED,
    ReservationStatus.CONVERTED,
    ReservationStatus.RELEASED,
    ReservationStatus.LAPSED,
)


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


# Built once (every approval or repayment runs them): compiled forms stay cached, values are parameters.
# The agreement that started last on or before the approval date (see `queries.latest_started`), and
# with it the pair's figures, any reservation of the application and the ids of the two accounts the
# entry posts to: one read, after the pair lock.
_RESERVE_READ = (
    sa.select(
        agreements,
        *FIGURE_COLUMNS,
        ledger.account_id_column(sa.bindparam("figure_fund"), sa.bindparam("figure_reserved_account")).label(
            "reserved_account_id"
        ),
        ledger.account_id_column(sa.bindparam("figure_fund"), sa.bindparam("b_commitments_account")).label(
            "commitments_account_id"
        ),
        queries.guarantee_of_application_column(sa.bindparam("b_application")).label("existing_guarantee"),
    )
    .where(
        agreements.c.fund_code == sa.bindparam("figure_fund"),
        agreements.c.bank_code == sa.bindparam("figure_bank"),
        agreements.c.effective_from <= sa.bindparam("b_approved_on"),
    )
    .order_by(agreements.c.effective_from.desc())
    .limit(1)
)
# The pair lock and the fund's policies (which the lock does not guard: reading them in the locking
# statement is reading them before the lock) in one round trip: a row per policy, or one row with no
# policy, or no row when the pair has never had an agreement.
_LOCK_PAIR_WITH_POLICIES = (
    sa.select(
        fund_policies.c.effective_from,
        fund_policies.c.edition,
        fund_policies.c.overrides,
        funds.c.region_code,
    )
    .select_from(
        fund_banks.join(funds, funds.c.code == fund_banks.c.fund_code).outerjoin(
            fund_policies, fund_policies.c.fund_code == fund_banks.c.fund_code
        )
    )
    .where(fund_banks.c.fund_code == sa.bindparam("b_fund"), fund_banks.c.bank_code == sa.bindparam("b_bank"))
    .order_by(fund_policies.c.effective_from)
    .with_for_update(of=fund_banks)
)


async def _lock_pair_with_policies(conn: AsyncConnection, fund_code: str, bank_code: str) -> list[Any]:
    """`queries.lock_pair` with the fund's policies and region: no row when the pair has never had an
    agreement."""
    return list(
        (await conn.execute(_LOCK_PAIR_WITH_POLICIES, {"b_fund": fund_code, "b_bank": bank_code})).all()
    )


_REDUCE_READ = sa.select(
    ledger.balance_column(sa.bindparam("b_fund"), sa.bindparam("b_outstanding_account")).label("outstanding"),
    ledger.account_id_column(sa.bindparam("b_fund"), sa.bindparam("b_outstanding_account")).label(
        "outstanding_account_id"
    ),
    ledger.account_id_column(sa.bindparam("b_fund"), sa.bindparam("b_commitments_account")).label(
        "commitments_account_id"
    ),
    sa.select(funds.c.region_code)
    .where(funds.c.code == sa.bindparam("b_fund"))
    .scalar_subquery()
    .label("region"),
)
_INSERT_GUARANTEE = guarantees.insert()


async def reserve(
    tx: Tx,
    *,
    fund_code: str,
    bank_code: str,
    amount_fen: int,
    approved_on: date,
    application_id: str | None = None,
) -> Reservation:
    """Take `amount_fen` of the pair's headroom for a guarantee approved on `approved_on`."""
    conn = tx.conn
    await tx.settle()
    require_positive(amount_fen)
    today = tx.today
    not_in_future(approved_on, "approved_on", today)
    pair = await _lock_pair_with_policies(conn, fund_code, bank_code)
    if not pair:
        raise NoAgreement(
            f"fund {fund_code} has no agreement with bank {bank_code}",
            fund_code=fund_code,
            bank_code=bank_code,
        )
    reserved_account = accounts.reserved(bank_code)
    params = {
        **figure_params(fund_code, bank_code, today),
        "b_approved_on": approved_on,
        "b_commitments_account": accounts.commitments(bank_code),
        "b_application": application_id,
    }
    # The agreement, with the figures and ids read alongside it (see _RESERVE_READ).
    agreement = (await conn.execute(_RESERVE_READ, params)).first()
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
    # The pair's row exists, so its fund does (a foreign key); a fund without a policy is refused here.
    dated = [(row.effective_from, row.edition, row.overrides) for row in pair if row.edition is not None]
    rules, region_code = policy.policy_in_force(dated, approved_on), str(pair[0].region_code)
    expires_on = approved_on + timedelta(days=rules.integer("reservation_days"))
    if expires_on < today:
        raise invalid("approved_on", f"a reservation approved then would have lapsed after {expires_on}")
    # The agreement whose multiple limits the pair today: the one just read when approved today.
    governing = (
        agreement if approved_on == today else await governing_agreement(conn, fund_code, bank_code, today)
    )
    capacity = capacity_from_figures(governing, *figures_from_row(agreement))
    if amount_fen > capacity.headroom_fen:
        raise LeverageExceeded(
            f"bank {bank_code} has {format_fen(capacity.headroom_fen)} yuan of headroom",
            headroom=Amount(capacity.headroom_fen),
            amount=Amount(amount_fen),
        )
    if application_id is not None and agreement.existing_guarantee is not None:
        raise Duplicate(
            f"application {application_id} already has a reservation",
            guarantee_id=agreement.existing_guarantee,
        )

    commitments_account = accounts.commitments(bank_code)
    entry_id = await ledger.post(
        tx,
        fund_code=fund_code,
        entry_date=approved_on,
        kind="guarantee_reserved",
        description=f"guarantee reserved at {bank_code}",
        reference=application_id,
        lines=ledger.transfer(reserved_account, commitments_account, amount_fen),
        known_account_ids={
            reserved_account: agreement.reserved_account_id,
            commitments_account: agreement.commitments_account_id,
        },
        last=True,
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
        _INSERT_GUARANTEE,
        {
            "id": reservation.id,
            "fund_code": fund_code,
            "bank_code": bank_code,
            "agreement_id": agreement.id,
            "application_id": application_id,
            "amount_fen": amount_fen,
            "approved_on": approved_on,
            "expires_on": expires_on,
            "status": RESERVED,
            "converted_fen": 0,
            "reserve_entry_id": entry_id,
            "created_at": utcnow(),
        },
    )
    tx.audit(
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
        region_code=region_code,
    )
    return reservation


async def get_reservation(conn: AsyncConnection, reservation_id: str, today: date) -> Reservation:
    return _reservation(await queries.get_guarantee(conn, reservation_id), today)


# A reservation's fund and bank never change, so the statement that locks its pair may find them
# itself; the reservation is read after the lock (a read that waited for the lock would be stale).
_LOCK_PAIR_OF = (
    sa.select(fund_banks.c.fund_code, fund_banks.c.bank_code)
    .select_from(
        fund_banks.join(
            guarantees,
            sa.and_(
                guarantees.c.fund_code == fund_banks.c.fund_code,
                guarantees.c.bank_code == fund_banks.c.bank_code,
            ),
        )
    )
    .where(guarantees.c.id == sa.bindparam("b_id"))
    .with_for_update(of=fund_banks)
)
# The reservation, its fund's region and the ids of the accounts its settlement posts to.
_LOCKED = (
    sa.select(
        guarantees,
        funds.c.region_code,
        *(
            ledger.account_id_column(guarantees.c.fund_code, sa.bindparam(f"b_{kind}")).label(f"{kind}_id")
            for kind in ("outstanding", "reserved", "commitments")
        ),
    )
    .select_from(guarantees.join(funds, funds.c.code == guarantees.c.fund_code))
    .where(guarantees.c.id == sa.bindparam("b_id"))
    .with_for_update(of=guarantees)
)


async def _locked(conn: AsyncConnection, reservation_id: str) -> Any:
    """The reservation after its pair is locked (so that no concurrent change is missed), with its
    region and the ids of its bank's memo accounts (`known_account_ids` of the entry that settles it)."""
    pair = (await conn.execute(_LOCK_PAIR_OF, {"b_id": reservation_id})).first()
    if pair is None:  # a reservation's pair always exists (a foreign key): no such reservation
        raise NotFound(f"guarantee reservation {reservation_id} not found")
    bank_code = str(pair.bank_code)
    row = (
        await conn.execute(
            _LOCKED,
            {
                "b_id": reservation_id,
                "b_outstanding": accounts.outstanding(bank_code),
                "b_reserved": accounts.reserved(bank_code),
                "b_commitments": accounts.commitments(bank_code),
            },
        )
    ).one()
    return row


def _account_ids(row: Any) -> dict[str, int | None]:
    return {
        accounts.outstanding(row.bank_code): row.outstanding_id,
        accounts.reserved(row.bank_code): row.reserved_id,
        accounts.commitments(row.bank_code): row.commitments_id,
    }


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


async def convert(tx: Tx, reservation_id: str, *, principal_fen: int, on: date) -> Reservation:
    """Disbursement: the principal becomes outstanding at the bank, the unused part is released."""
    conn = tx.conn
    await tx.settle()
    require_positive(principal_fen, "principal")
    not_in_future(on, "on", tx.today)
    row = await _locked(conn, reservation_id)
    current = _reservation(row, tx.today)
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
        raise invalid("on", f"is before the guarantee was approved ({row.approved_on})")

    unused = row.amount_fen - principal_fen
    lines = [
        ledger.debit(accounts.outstanding(row.bank_code), principal_fen),
        ledger.credit(accounts.reserved(row.bank_code), row.amount_fen),
    ]
    if unused:
        lines.append(ledger.debit(accounts.commitments(row.bank_code), unused))
    entry_id = await ledger.post(
        tx,
        fund_code=row.fund_code,
        entry_date=on,
        kind="guarantee_converted",
        description=f"loan disbursed under guarantee {reservation_id}",
        reference=row.application_id,
        lines=lines,
        known_account_ids=_account_ids(row),
        last=True,
    )
    await _settle(
        conn, reservation_id, status=CONVERTED, settled_on=on, entry_id=entry_id, converted_fen=principal_fen
    )
    tx.audit(
        "guarantee.converted",
        "guarantee",
        reservation_id,
        {"principal_fen": principal_fen, "released_fen": unused, "on": on.isoformat(), "entry_id": entry_id},
        region_code=row.region_code,
    )
    return dataclasses.replace(current, status=CONVERTED, converted_fen=principal_fen)


async def release(tx: Tx, reservation_id: str, *, on: date, reason: str) -> Reservation:
    """Rejection or withdrawal: the whole reservation goes back to headroom. A lapsed one stays as it is."""
    conn = tx.conn
    await tx.settle()
    if not reason.strip():
        raise invalid("reason", "must not be empty")
    not_in_future(on, "on", tx.today)
    row = await _locked(conn, reservation_id)
    current = _reservation(row, tx.today)
    if current.status == LAPSED:
        return current
    if current.status != RESERVED:
        raise InvalidState(
            f"guarantee reservation {reservation_id} is {current.status}", status=current.status
        )
    if on < row.approved_on:
        raise invalid("on", f"is before the guarantee was approved ({row.approved_on})")
    entry_id = await ledger.reverse(
        tx, row.reserve_entry_id, entry_date=on, reason=f"guarantee {reservation_id} released: {reason}"
    )
    await _settle(conn, reservation_id, status=RELEASED, settled_on=on, entry_id=entry_id)
    tx.audit(
        "guarantee.released",
        "guarantee",
        reservation_id,
        {"reason": reason, "on": on.isoformat(), "entry_id": entry_id},
        region_code=row.region_code,
    )
    return dataclasses.replace(current, status=RELEASED)


async def lapse_expired(tx: Tx) -> int:
    """Mark every reservation past its last day as lapsed and release it in the ledger.

    Idempotent and safe in two processes at once: each row is claimed by a conditional update, so a
    second run (or a concurrent one, once the first commits) finds nothing left to do.
    """
    conn = tx.conn
    await tx.settle()
    rows = await queries.expired_reserved(conn, tx.today)
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
        entry_id = await ledger.reverse(
            tx, row.reserve_entry_id, entry_date=lapsed_on, reason=f"guarantee {row.id} lapsed"
        )
        await conn.execute(
            guarantees.update().where(guarantees.c.id == row.id).values(settle_entry_id=entry_id)
        )
        tx.audit(
            "guarantee.lapsed",
            "guarantee",
            row.id,
            {"expires_on": row.expires_on.isoformat(), "entry_id": entry_id},
            region_code=row.region_code,
        )
        tx.emit(
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
    tx: Tx,
    *,
    fund_code: str,
    bank_code: str,
    amount_fen: int,
    on: date,
    reason: str,
    reference: str | None = None,
) -> str:
    """Principal leaves the pair's outstanding (repayment, compensation, write-off); returns the entry id."""
    conn = tx.conn
    await tx.settle()
    require_positive(amount_fen)
    not_in_future(on, "on", tx.today)
    if not reason.strip():
        raise invalid("reason", "must not be empty")
    if not await queries.lock_pair(conn, fund_code, bank_code):
        raise NoAgreement(
            f"fund {fund_code} has no agreement with bank {bank_code}",
            fund_code=fund_code,
            bank_code=bank_code,
        )
    # One read, after the pair lock: the outstanding, the ids of the accounts to post to, the region.
    outstanding_account = accounts.outstanding(bank_code)
    commitments_account = accounts.commitments(bank_code)
    params = {
        "b_fund": fund_code,
        "b_outstanding_account": outstanding_account,
        "b_commitments_account": commitments_account,
    }
    row = (await conn.execute(_REDUCE_READ, params)).one()
    outstanding = int(row.outstanding or 0)
    if amount_fen > outstanding:
        raise InvalidState(
            f"bank {bank_code} has less guaranteed outstanding than that",
            outstanding=Amount(outstanding),
            amount=Amount(amount_fen),
        )
    entry_id = await ledger.post(
        tx,
        fund_code=fund_code,
        entry_date=on,
        kind="outstanding_reduced",
        description=f"guaranteed outstanding at {bank_code} reduced: {reason}",
        reference=reference,
        lines=ledger.transfer(commitments_account, outstanding_account, amount_fen),
        known_account_ids={
            outstanding_account: row.outstanding_account_id,
            commitments_account: row.commitments_account_id,
        },
        last=True,
    )
    tx.audit(
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
        region_code=row.region,
    )
    return entry_id
