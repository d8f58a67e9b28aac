"""Compensation claims, recoveries and write-offs: the commands (domain.md 7, api.md "Compensation").

The ledger entries (chart of accounts, domain.md 10), per fund, with A the amount paid, F the fund's
part of a recovery and R what is left when the loan is written off:

    claim paid   Dr recoverable:{bank} A             Cr deposit:{bank} A
                 Dr memo:commitments  P              Cr memo:outstanding:{bank} P   (the loan's principal)
    recovery     Dr deposit:{bank} F                 Cr income:recovery F
                 Dr expense:compensation F           Cr recoverable:{bank} F
    write-off    Dr expense:write_off R              Cr recoverable:{bank} R

`recoverable:{bank}` holds what the fund paid and has neither recovered nor written off; it is
settled either into `expense:compensation` (the part a recovery made good) or `expense:write_off`
(the part given up). So compensation paid = recoverable + expense:compensation + expense:write_off,
recovered = income:recovery, and `cash + deposited = contributed − compensation_paid + recovered`
holds by double entry (see `loanfund.funds.service.position_from_balances`). The bank's part of a
recovery is the bank's money and never enters the fund's ledger.

Locking, in the order the rest of loanfund uses: the loan row, then its claim, then the pair
(`fund_banks`), then ledger balance rows. Commands take a `Tx` and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from loanfund import ledger
from loanfund.agreements import queries as agreement_queries
from loanfund.agreements import reservations
from loanfund.agreements.capacity import Capacity, pair_capacity
from loanfund.agreements.queries import Agreement
from loanfund.claims import queries, risk, rules
from loanfund.claims.queries import PAID, REJECTED, SUBMITTED, Claim, Recovery, WriteOff
from loanfund.clock import not_in_future, utcnow
from loanfund.db.tables import compensation_claims, loan_recoveries, loan_write_offs, loans
from loanfund.errors import (
    ClaimTooEarly,
    Duplicate,
    InsufficientDeposit,
    InvalidState,
    NoAgreement,
    SameMakerChecker,
    invalid,
    stated_reason,
)
from loanfund.funds.service import fund_policy
from loanfund.ids import new_id
from loanfund.ledger import accounts
from loanfund.loans import delinquency
from loanfund.loans import queries as loan_queries
from loanfund.loans.queries import Loan
from loanfund.money import CURRENCY, Amount, format_fen, format_pct, require_positive
from loanfund.uow import Tx

COMPENSATED, WRITTEN_OFF = "compensated", "written_off"


async def _locked_loan(tx: Tx, loan_id: str) -> Loan:
    """The loan locked, with the interest paid read after the lock (see `loan_queries.LockedLoan`)."""
    locked = await loan_queries.lock_loan(tx, loan_id)
    return loan_queries.with_interest_paid(locked, await loan_queries.interest_paid(tx.conn, loan_id))


def _claim_event_data(claim: Claim, loan: Loan) -> dict[str, object]:
    return {
        "claim_id": claim.id,
        "loan_id": loan.id,
        "loan_number": loan.loan_number,
        "fund_code": claim.fund_code,
        "bank_code": claim.bank_code,
        "currency": CURRENCY,
        "amount": format_fen(claim.amount_fen),
    }


async def _claim_base(tx: Tx, loan: Loan, agreement: Agreement, claimed_on: date) -> tuple[int, int]:
    """(principal, interest) a claim is based on: the principal outstanding now, and the contractual
    interest accrued to the claim date less every interest payment reported, where the agreement
    covers interest. Never more than is owed now, whatever the claim date."""
    if not agreement.claim_covers_interest:
        return loan.outstanding_fen, 0
    policy = await fund_policy(tx.conn, loan.fund_code, loan.contracted_on)
    repaid = [(r.paid_on, r.principal_fen) for r in await loan_queries.repayments(tx.conn, loan.id)]
    accrued = rules.accrued_interest_fen(
        principal_fen=loan.principal_fen,
        principal_repaid=repaid,
        annual_rate_pct=loan.annual_rate_pct,
        start=loan.disbursed_on,
        end=claimed_on,
        day_basis=policy.integer("day_count_basis"),
    )
    return loan.outstanding_fen, max(0, accrued - loan.interest_paid_fen)


async def file_claim(tx: Tx, *, loan_id: str, claimed_on: date) -> Claim:
    """A bank claims the fund's share of a defaulted loan (api.md `POST /compensation-claims`).

    base = outstanding principal + unpaid contractual interest to the claim date (or principal only
    where the agreement says so; penalty interest never); amount = the fund's share of it, half-up.
    """
    not_in_future(claimed_on, "claimed_on", tx.today)
    loan = await _locked_loan(tx, loan_id)
    if claimed_on < loan.disbursed_on:
        raise invalid("claimed_on", f"is before the loan was disbursed ({loan.disbursed_on})")
    existing = await queries.open_claim(tx.conn, loan.id)
    if loan.stored_status != "active":
        if existing is not None:
            raise Duplicate(f"loan {loan.id} already has a {existing.status} claim", id=existing.id)
        raise InvalidState(f"loan {loan.id} is {loan.status}", status=loan.status)
    agreement = await agreement_queries.latest_started(tx.conn, loan.fund_code, loan.bank_code, claimed_on)
    if agreement is None:
        raise NoAgreement(
            f"no agreement between fund {loan.fund_code} and bank {loan.bank_code} on {claimed_on}",
            fund_code=loan.fund_code,
            bank_code=loan.bank_code,
        )
    # In default on the claim date, and still today: a claim dated back to before the arrears were
    # cured would make the fund pay for a loan that is being repaid.
    days = await delinquency.days_past_due_on(tx.conn, loan, claimed_on)
    days_now = days if claimed_on == tx.today else await delinquency.days_past_due_on(tx.conn, loan, tx.today)
    for on, past_due in ((claimed_on, days), (tx.today, days_now)):
        if past_due < agreement.claim_after_days:
            raise ClaimTooEarly(
                f"loan {loan.loan_number} is {past_due} days past due on {on};"
                f" the agreement allows a claim from {agreement.claim_after_days} days",
                days_past_due=past_due,
                claim_after_days=agreement.claim_after_days,
            )
    if existing is not None:
        raise Duplicate(f"loan {loan.id} already has a {existing.status} claim", id=existing.id)

    base_principal, base_interest = await _claim_base(tx, loan, agreement, claimed_on)
    share: Decimal = agreement.fund_loss_share_pct
    amount = rules.claim_amount_fen(base_principal + base_interest, share)
    claim = Claim(
        id=new_id("clm"),
        loan_id=loan.id,
        fund_code=loan.fund_code,
        bank_code=loan.bank_code,
        region_code=loan.region_code,
        agreement_id=agreement.id,
        claimed_on=claimed_on,
        days_past_due=days,
        claim_after_days=agreement.claim_after_days,
        base_principal_fen=base_principal,
        base_interest_fen=base_interest,
        fund_loss_share_pct=share,
        amount_fen=amount,
        status=SUBMITTED,
        filed_by=tx.actor.client_id,
        filed_at=utcnow(),
        decided_by=None,
        decided_at=None,
        decided_on=None,
        reason=None,
        entry_id=None,
        recovered_fund_fen=0,
        recovered_bank_fen=0,
        written_off_fen=0,
    )
    await tx.conn.execute(compensation_claims.insert().values(open_loan_id=loan.id, **claim.__dict__))
    tx.audit(
        "claim.submitted",
        "compensation_claim",
        claim.id,
        {
            "loan_id": loan.id,
            "claimed_on": claimed_on.isoformat(),
            "days_past_due": days,
            "claim_after_days": agreement.claim_after_days,
            "base_principal_fen": base_principal,
            "base_interest_fen": base_interest,
            "fund_loss_share_pct": format_pct(share),
            "amount_fen": amount,
        },
        region_code=loan.region_code,
    )
    tx.emit(
        "claim_submitted",
        fund_code=loan.fund_code,
        region_code=loan.region_code,
        bank_code=loan.bank_code,
        data={**_claim_event_data(claim, loan), "claimed_on": claimed_on.isoformat()},
    )
    return claim


@dataclass(frozen=True)
class Payment:
    claim: Claim
    capacity: Capacity  # the pair's, after the payment
    outcome: risk.RiskOutcome


async def _refuse_if_stale(tx: Tx, claim: Claim, loan: Loan) -> None:
    """A claim is paid as filed only while the loan is as it was: a repayment reported since, or arrears
    cured, would have the fund pay for money the bank has got back. The manager rejects it then, and
    the bank files again if the loan is still in default."""
    agreement = await agreement_queries.get_agreement(tx.conn, claim.agreement_id)
    principal, interest = await _claim_base(tx, loan, agreement, claim.claimed_on)
    if (principal, interest) != (claim.base_principal_fen, claim.base_interest_fen):
        raise InvalidState(
            f"loan {loan.loan_number} changed since the claim was filed (a repayment was reported):"
            " reject the claim; the bank may file again",
            status=claim.status,
            base_principal=Amount(claim.base_principal_fen),
            base_interest=Amount(claim.base_interest_fen),
            now_principal=Amount(principal),
            now_interest=Amount(interest),
        )
    days = await delinquency.days_past_due_on(tx.conn, loan, tx.today)
    if days < claim.claim_after_days:
        raise InvalidState(
            f"loan {loan.loan_number} is {days} days past due today, under the agreement's"
            f" {claim.claim_after_days}: reject the claim",
            status=claim.status,
            days_past_due=days,
            claim_after_days=claim.claim_after_days,
        )


async def approve_claim(tx: Tx, claim_id: str) -> Payment:
    """A manager (not the filer) approves: the fund pays the amount from its deposit at the bank, the
    loan is `compensated` and leaves the bank's outstanding, and the rates are measured again."""
    conn = tx.conn
    first = await queries.get_claim(conn, claim_id)
    if first.filed_by is not None and first.filed_by == tx.actor.client_id:
        raise SameMakerChecker("the client that filed a claim may not approve it")
    loan = await _locked_loan(tx, first.loan_id)
    claim = await queries.get_claim(conn, claim_id, for_update=True)
    if claim.status != SUBMITTED:
        raise InvalidState(f"claim {claim.id} is {claim.status}", status=claim.status)
    if loan.stored_status != "active":
        raise InvalidState(f"loan {loan.id} is {loan.status}", status=loan.status)
    await _refuse_if_stale(tx, claim, loan)
    await agreement_queries.lock_pair(conn, claim.fund_code, claim.bank_code)
    deposit_account = accounts.deposit(claim.bank_code)
    deposit = await ledger.balance(conn, claim.fund_code, deposit_account)
    if claim.amount_fen > deposit:
        raise InsufficientDeposit(
            f"the fund has only {format_fen(deposit)} yuan at bank {claim.bank_code}",
            deposit=Amount(deposit),
            amount=Amount(claim.amount_fen),
        )
    entry_id = None
    if claim.amount_fen:
        entry_id = await ledger.post(
            tx,
            fund_code=claim.fund_code,
            entry_date=tx.today,
            kind="compensation_paid",
            description=f"compensation for loan {loan.loan_number} at {claim.bank_code}",
            reference=claim.id,
            lines=ledger.transfer(accounts.recoverable(claim.bank_code), deposit_account, claim.amount_fen),
        )
    if loan.outstanding_fen:
        await reservations.reduce_outstanding(
            tx,
            fund_code=claim.fund_code,
            bank_code=claim.bank_code,
            amount_fen=loan.outstanding_fen,
            on=tx.today,
            reason=f"loan {loan.loan_number} compensated",
            reference=loan.id,
        )
    changed = await conn.execute(
        loans.update().where(loans.c.id == loan.id, loans.c.status == "active").values(status=COMPENSATED)
    )
    if changed.rowcount != 1:
        raise InvalidState(f"loan {loan.id} changed meanwhile; retry")
    decided_at = utcnow()
    await conn.execute(
        compensation_claims.update()
        .where(compensation_claims.c.id == claim.id)
        .values(
            status=PAID,
            decided_by=tx.actor.client_id,
            decided_at=decided_at,
            decided_on=tx.today,
            entry_id=entry_id,
        )
    )
    paid = await queries.get_claim(conn, claim.id)
    tx.audit(
        "claim.paid",
        "compensation_claim",
        claim.id,
        {"amount_fen": claim.amount_fen, "paid_on": tx.today.isoformat(), "entry_id": entry_id},
        region_code=claim.region_code,
    )
    tx.audit(
        "loan.compensated",
        "loan",
        loan.id,
        {"claim_id": claim.id, "outstanding_fen": loan.outstanding_fen, "status": COMPENSATED},
        region_code=loan.region_code,
    )
    tx.emit(
        "claim_paid",
        fund_code=claim.fund_code,
        region_code=claim.region_code,
        bank_code=claim.bank_code,
        data={**_claim_event_data(paid, loan), "paid_on": tx.today.isoformat()},
    )
    agreement = await agreement_queries.get_agreement(conn, claim.agreement_id)
    governing = await agreement_queries.latest_started(conn, claim.fund_code, claim.bank_code, tx.today)
    outcome = await risk.after_payment(
        tx,
        agreement=governing or agreement,
        fund_code=claim.fund_code,
        bank_code=claim.bank_code,
        region_code=claim.region_code,
        paid_fen=claim.amount_fen,
        released_fen=loan.principal_fen,
    )
    await tx.flush()  # the deferred postings, so that the capacity read below includes them
    capacity = await pair_capacity(conn, claim.fund_code, claim.bank_code, today=tx.today)
    return Payment(paid, capacity, outcome)


async def reject_claim(tx: Tx, claim_id: str, *, reason: str) -> Claim:
    reason = stated_reason(reason)
    first = await queries.get_claim(tx.conn, claim_id)
    await _locked_loan(tx, first.loan_id)
    claim = await queries.get_claim(tx.conn, claim_id, for_update=True)
    if claim.status != SUBMITTED:
        raise InvalidState(f"claim {claim.id} is {claim.status}", status=claim.status)
    await tx.conn.execute(
        compensation_claims.update()
        .where(compensation_claims.c.id == claim.id)
        .values(
            status=REJECTED,
            open_loan_id=None,
            decided_by=tx.actor.client_id,
            decided_at=utcnow(),
            decided_on=tx.today,
            reason=reason,
        )
    )
    tx.audit(
        "claim.rejected", "compensation_claim", claim.id, {"reason": reason}, region_code=claim.region_code
    )
    tx.emit(
        "claim_rejected",
        fund_code=claim.fund_code,
        region_code=claim.region_code,
        bank_code=claim.bank_code,
        data={
            "claim_id": claim.id,
            "loan_id": claim.loan_id,
            "fund_code": claim.fund_code,
            "bank_code": claim.bank_code,
            "reason": reason,
        },
    )
    return await queries.get_claim(tx.conn, claim.id)


async def _paid_claim(tx: Tx, loan: Loan) -> Claim:
    claim = await queries.open_claim(tx.conn, loan.id, for_update=True)
    if claim is None or claim.status != PAID:
        raise InvalidState(f"loan {loan.id} is {loan.status}, not compensated", status=loan.status)
    return claim


async def record_recovery(tx: Tx, loan_id: str, *, amount_fen: int, recovered_on: date) -> Recovery:
    """Money recovered after compensation, split in the claim's shares: the fund's part (half-up)
    returns to its deposit at the bank, and the bank keeps the remainder."""
    require_positive(amount_fen, "amount")
    not_in_future(recovered_on, "recovered_on", tx.today)
    loan = await _locked_loan(tx, loan_id)
    if loan.stored_status != COMPENSATED:
        raise InvalidState(f"loan {loan.id} is {loan.status}, not compensated", status=loan.status)
    claim = await _paid_claim(tx, loan)
    assert claim.decided_on is not None
    if recovered_on < claim.decided_on:
        raise invalid("recovered_on", f"is before the compensation was paid ({claim.decided_on})")
    fund_part, bank_part = rules.recovery_split(amount_fen, claim.fund_loss_share_pct)
    if fund_part > claim.recoverable_fen:
        raise InvalidState(
            "the fund's part would be more than it paid and has not recovered",
            fund_part=Amount(fund_part),
            recoverable=Amount(claim.recoverable_fen),
        )
    await agreement_queries.lock_pair(tx.conn, claim.fund_code, claim.bank_code)
    entry_id = None
    if fund_part:
        entry_id = await ledger.post(
            tx,
            fund_code=claim.fund_code,
            entry_date=recovered_on,
            kind="recovery",
            description=f"recovery on loan {loan.loan_number} at {claim.bank_code}",
            reference=claim.id,
            lines=[
                ledger.debit(accounts.deposit(claim.bank_code), fund_part),
                ledger.debit(accounts.COMPENSATION, fund_part),
                ledger.credit(accounts.RECOVERY, fund_part),
                ledger.credit(accounts.recoverable(claim.bank_code), fund_part),
            ],
        )
    recovery = Recovery(
        id=new_id("rcv"),
        loan_id=loan.id,
        claim_id=claim.id,
        amount_fen=amount_fen,
        fund_part_fen=fund_part,
        bank_part_fen=bank_part,
        recovered_on=recovered_on,
        entry_id=entry_id,
        created_at=utcnow(),
    )
    await tx.conn.execute(loan_recoveries.insert().values(created_by=tx.actor.client_id, **recovery.__dict__))
    await tx.conn.execute(
        compensation_claims.update()
        .where(compensation_claims.c.id == claim.id)
        .values(
            recovered_fund_fen=compensation_claims.c.recovered_fund_fen + fund_part,
            recovered_bank_fen=compensation_claims.c.recovered_bank_fen + bank_part,
        )
    )
    facts = {
        "recovery_id": recovery.id,
        "claim_id": claim.id,
        "amount_fen": amount_fen,
        "fund_part_fen": fund_part,
        "bank_part_fen": bank_part,
        "recovered_on": recovered_on.isoformat(),
        "entry_id": entry_id,
    }
    tx.audit("loan.recovery", "loan", loan.id, facts, region_code=loan.region_code)
    tx.emit(
        "recovery_recorded",
        fund_code=claim.fund_code,
        region_code=claim.region_code,
        bank_code=claim.bank_code,
        data={
            "recovery_id": recovery.id,
            "loan_id": loan.id,
            "claim_id": claim.id,
            "fund_code": claim.fund_code,
            "bank_code": claim.bank_code,
            "currency": CURRENCY,
            "amount": format_fen(amount_fen),
            "fund_part": format_fen(fund_part),
            "bank_part": format_fen(bank_part),
            "recovered_on": recovered_on.isoformat(),
        },
    )
    return recovery


async def write_off(tx: Tx, loan_id: str, *, reason: str) -> WriteOff:
    """A manager closes a compensated loan: what the fund has not recovered becomes its loss."""
    reason = stated_reason(reason)
    loan = await _locked_loan(tx, loan_id)
    if loan.stored_status != COMPENSATED:
        raise InvalidState(f"loan {loan.id} is {loan.status}, not compensated", status=loan.status)
    claim = await _paid_claim(tx, loan)
    remaining = claim.recoverable_fen
    await agreement_queries.lock_pair(tx.conn, claim.fund_code, claim.bank_code)
    entry_id = None
    if remaining:
        entry_id = await ledger.post(
            tx,
            fund_code=claim.fund_code,
            entry_date=tx.today,
            kind="write_off",
            description=f"loan {loan.loan_number} at {claim.bank_code} written off: {reason}",
            reference=claim.id,
            lines=ledger.transfer(accounts.WRITE_OFF, accounts.recoverable(claim.bank_code), remaining),
        )
    record = WriteOff(
        id=new_id("wof"),
        loan_id=loan.id,
        claim_id=claim.id,
        amount_fen=remaining,
        reason=reason,
        written_off_on=tx.today,
        entry_id=entry_id,
        created_at=utcnow(),
    )
    await tx.conn.execute(loan_write_offs.insert().values(created_by=tx.actor.client_id, **record.__dict__))
    await tx.conn.execute(
        compensation_claims.update()
        .where(compensation_claims.c.id == claim.id)
        .values(written_off_fen=compensation_claims.c.written_off_fen + remaining)
    )
    changed = await tx.conn.execute(
        loans.update().where(loans.c.id == loan.id, loans.c.status == COMPENSATED).values(status=WRITTEN_OFF)
    )
    if changed.rowcount != 1:
        raise InvalidState(f"loan {loan.id} changed meanwhile; retry")
    tx.audit(
        "loan.written_off",
        "loan",
        loan.id,
        {
            "write_off_id": record.id,
            "claim_id": claim.id,
            "amount_fen": remaining,
            "reason": reason,
            "entry_id": entry_id,
        },
        region_code=loan.region_code,
    )
    tx.emit(
        "loan_written_off",
        fund_code=claim.fund_code,
        region_code=claim.region_code,
        bank_code=claim.bank_code,
        data={
            "loan_id": loan.id,
            "claim_id": claim.id,
            "fund_code": claim.fund_code,
            "bank_code": claim.bank_code,
            "currency": CURRENCY,
            "amount": format_fen(remaining),
            "reason": reason,
        },
    )
    return record
