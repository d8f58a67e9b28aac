"""Loan commands for the bank: disbursement, repayments, an extension, missed instalments.

The fund receives no loan money: a loan moves only the memo accounts, through
`loanfund.agreements.reservations` (disbursement converts the reservation into outstanding, each
principal repayment reduces outstanding). Interest repaid is recorded on the repayment row.
Each command locks the loan (or the application) row, so concurrent requests are decided in turn.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from loanfund.agreements import reservations
from loanfund.applications import queries as application_queries
from loanfund.applications import service as application_service
from loanfund.applications.queries import LockedApplication
from loanfund.clock import not_in_future, utcnow
from loanfund.db.tables import loan_extensions, loan_repayments, loans
from loanfund.errors import (
    Duplicate,
    ExtensionNotAllowed,
    GuaranteeLapsed,
    InvalidState,
    MissingReferenceRate,
    NotApproved,
    Overpayment,
    PrincipalExceedsGuarantee,
    RateAboveCeiling,
    TermTooLong,
    invalid,
)
from loanfund.funds.service import fund_policy
from loanfund.ids import new_id
from loanfund.loans import delinquency, overdue_spells, queries
from loanfund.loans.queries import Loan, LockedLoan, Repayment
from loanfund.money import Amount
from loanfund.policy import rate_ceiling_pct
from loanfund.rates import ReferenceRate
from loanfund.rates.store import rate_for_loan
from loanfund.terms import add_months, term_months
from loanfund.uow import Tx

# An extension needs the consent of those who back the loan: its guarantors, or its joint group.
CONSENT_KINDS = ("guarantor", "joint")


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")


async def disburse(
    tx: Tx,
    app: LockedApplication,
    *,
    loan_number: str,
    principal_fen: int,
    annual_rate_pct: Decimal,
    disbursed_on: date,
    maturity_on: date,
    contracted_on: date | None,
) -> Loan:
    """Record the bank's loan under an approved guarantee; refusals in the contract's order. Returns
    the loan as stored."""
    conn, today = tx.conn, tx.today
    loan_number = loan_number.strip()
    if not loan_number or len(loan_number) > 64:
        raise invalid("loan_number", "must have 1–64 characters")
    if principal_fen <= 0:
        raise invalid("principal", "must be more than zero")
    if annual_rate_pct <= 0:
        raise invalid("annual_rate_pct", "must be more than zero")
    not_in_future(disbursed_on, "disbursed_on", today)
    if contracted_on is not None:
        not_in_future(contracted_on, "contracted_on", today)
        if contracted_on > disbursed_on:
            raise invalid("contracted_on", "must be on or before disbursed_on")
    term = term_months(disbursed_on, maturity_on)  # refuses a maturity not after disbursement
    contract_date = contracted_on or disbursed_on

    if app.approved_on is not None and disbursed_on < app.approved_on:
        raise invalid("disbursed_on", f"is before the guarantee was approved ({app.approved_on})")
    borrower = app.borrower
    policy = await fund_policy(conn, app.fund_code, contract_date)

    # 422 business rules.
    if app.guarantee_amount_fen is not None and principal_fen > app.guarantee_amount_fen:
        raise PrincipalExceedsGuarantee(
            "the principal is more than the guarantee approved",
            principal=Amount(principal_fen),
            guarantee=Amount(app.guarantee_amount_fen),
        )
    term_param = "max_term_individual_months" if borrower.kind == "individual" else "max_term_firm_months"
    max_term = policy.integer(term_param) if policy.admits(term_param) else 0
    if term > max_term:
        raise TermTooLong(
            f"a term of {term} months is longer than the {max_term} months {policy.edition} allows",
            term_months=term,
            max_term_months=max_term,
        )
    reference: ReferenceRate | None = None
    missing: MissingReferenceRate | None = None
    try:
        reference = await rate_for_loan(conn, term, contract_date)
    except MissingReferenceRate as exc:
        missing = exc
    ceiling: Decimal | None = None
    if reference is not None:
        ceiling = rate_ceiling_pct(policy, reference.rate_pct)
        if annual_rate_pct > ceiling:
            raise RateAboveCeiling(
                f"{_fmt(annual_rate_pct)}% is above the ceiling of {_fmt(ceiling)}% ({reference.kind}"
                f" {_fmt(reference.rate_pct)}% of {reference.effective_on} under {policy.edition})",
                annual_rate_pct=_fmt(annual_rate_pct),
                rate_ceiling_pct=_fmt(ceiling),
                reference_rate_pct=_fmt(reference.rate_pct),
                reference_rate_date=reference.effective_on.isoformat(),
                reference_rate_kind=reference.kind,
            )

    # 409 state.
    if app.status == "lapsed":
        raise GuaranteeLapsed(
            f"the guarantee lapsed after {app.guarantee_expires_on}",
            expires_on=app.guarantee_expires_on.isoformat() if app.guarantee_expires_on else None,
        )
    if app.status == "disbursed":
        raise InvalidState(
            f"application {app.id} is already disbursed", status=app.status, loan_id=app.loan_id
        )
    if app.status != "guarantee_approved" or app.guarantee_id is None:
        raise NotApproved(f"application {app.id} is {app.status}, not guarantee_approved", status=app.status)
    if missing is not None or reference is None or ceiling is None:
        raise missing or MissingReferenceRate("no reference rate")

    await reservations.convert(tx, app.guarantee_id, principal_fen=principal_fen, on=disbursed_on)
    loan_id = new_id("loan")
    row = (
        await conn.execute(
            _INSERT_LOAN[tx.dialect],
            dict(
                id=loan_id,
                application_id=app.id,
                fund_code=app.fund_code,
                bank_code=app.bank_code,
                borrower_id=app.borrower_id,
                borrower_kind=app.borrower.kind,
                region_code=app.region_code,
                guarantee_id=app.guarantee_id,
                loan_number=loan_number,
                principal_fen=principal_fen,
                outstanding_fen=principal_fen,
                annual_rate_pct=annual_rate_pct,
                disbursed_on=disbursed_on,
                contracted_on=contract_date,
                maturity_on=maturity_on,
                original_maturity_on=maturity_on,
                term_months=term,
                reference_rate_kind=reference.kind,
                reference_rate_pct=reference.rate_pct,
                reference_rate_date=reference.effective_on,
                reference_rate_stale=reference.stale,
                rate_ceiling_pct=ceiling,
                policy_edition=policy.edition,
                status="active",
                overdue_principal_fen=0,
                extension_count=0,
                created_at=utcnow(),
                created_by=tx.actor.client_id,
            ),
        )
    ).first()
    if row is None:  # 409 duplicate, last of the refusals: the insert is the check (one round trip)
        existing = await queries.find_by_number(conn, app.bank_code, loan_number)
        raise Duplicate(f"bank {app.bank_code} already has loan number {loan_number}", id=existing)
    await application_service.mark_disbursed(tx, app, loan_id=loan_id)
    tx.audit(
        "loan.disbursed",
        "loan",
        loan_id,
        {
            "application_id": app.id,
            "guarantee_id": app.guarantee_id,
            "fund_code": app.fund_code,
            "bank_code": app.bank_code,
            "loan_number": loan_number,
            "principal_fen": principal_fen,
            "released_fen": (app.guarantee_amount_fen or principal_fen) - principal_fen,
            "annual_rate_pct": _fmt(annual_rate_pct),
            "disbursed_on": disbursed_on.isoformat(),
            "contracted_on": contract_date.isoformat(),
            "maturity_on": maturity_on.isoformat(),
            "term_months": term,
            "reference_rate_kind": reference.kind,
            "reference_rate_pct": _fmt(reference.rate_pct),
            "reference_rate_date": reference.effective_on.isoformat(),
            "reference_rate_stale": reference.stale,
            "rate_ceiling_pct": _fmt(ceiling),
            "policy_edition": policy.edition,
        },
        region_code=app.region_code,
    )
    return queries.new_loan(row, today)


# A loan number taken at the bank inserts nothing (then the refusal reads whose it is); the row comes
# back as stored, so the response needs no second read.
_INSERT_LOAN = {
    dialect: insert(loans)
    .on_conflict_do_nothing(index_elements=["bank_code", "loan_number"])
    .returning(loans)
    for dialect, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}


def _require_active(loan: LockedLoan) -> None:
    if loan.stored_status != "active":
        raise InvalidState(f"loan {loan.id} is {loan.status}", status=loan.status)


# Built once (every repayment runs them): the SET clause and the values come from the parameters.
# It returns the interest repaid so far: its statement runs after the loan is locked, so it counts every
# repayment committed before (a read in the locking statement itself could miss one it waited for).
_REPAY = (
    loans.update()
    .where(
        loans.c.id == sa.bindparam("b_id"),
        loans.c.status == "active",
        loans.c.outstanding_fen == sa.bindparam("b_outstanding_fen"),
    )
    .returning(
        sa.select(sa.func.coalesce(sa.func.sum(loan_repayments.c.interest_fen), 0))
        .where(loan_repayments.c.loan_id == sa.bindparam("b_id"))
        .scalar_subquery()
        .label("interest_paid_fen")
    )
)
_INSERT_REPAYMENT = loan_repayments.insert()


async def repay(
    tx: Tx,
    loan: LockedLoan,
    *,
    principal_fen: int,
    interest_fen: int,
    paid_on: date,
) -> tuple[Loan, Repayment]:
    """A repayment of principal and/or interest (either may be zero, not both); returns the loan as it
    now stands and the repayment, without reading them again. Principal leaves the bank's guaranteed
    outstanding; at zero outstanding the loan is `repaid` and its guarantee is spent.

    Principal pays a reported overdue amount first; once none is left the missed instalment is cured.
    """
    conn, actor, today = tx.conn, tx.actor, tx.today
    if principal_fen < 0 or interest_fen < 0:
        raise invalid("principal", "must not be negative")
    if principal_fen == 0 and interest_fen == 0:
        raise invalid("principal", "a repayment needs principal or interest above zero")
    not_in_future(paid_on, "paid_on", today)
    _require_active(loan)
    if paid_on < loan.disbursed_on:
        raise invalid("paid_on", f"is before the loan was disbursed ({loan.disbursed_on})")
    if principal_fen > loan.outstanding_fen:
        raise Overpayment(
            "more principal than is outstanding",
            principal=Amount(principal_fen),
            outstanding_principal=Amount(loan.outstanding_fen),
        )
    if principal_fen:
        await reservations.reduce_outstanding(
            tx,
            fund_code=loan.fund_code,
            bank_code=loan.bank_code,
            amount_fen=principal_fen,
            on=paid_on,
            reason=f"repayment of loan {loan.loan_number}",
            reference=loan.id,
        )
    outstanding = loan.outstanding_fen - principal_fen
    overdue_principal = max(0, loan.overdue_principal_fen - principal_fen)
    values: dict[str, object] = {"outstanding_fen": outstanding, "overdue_principal_fen": overdue_principal}
    if overdue_principal == 0:
        values["overdue_since"] = None
    # Missed instalments are cured only when what was missed is paid, interest too (delinquency.py).
    arrears = None
    if loan.overdue_since is not None:
        arrears = await delinquency.apply_repayment(
            conn, loan.id, principal_fen=principal_fen, interest_fen=interest_fen, paid_on=paid_on
        )
    if arrears is not None:
        values.update(
            overdue_since=arrears.overdue_since, overdue_principal_fen=arrears.overdue_principal_fen
        )
    if outstanding == 0:
        values.update(status="repaid", repaid_on=paid_on, overdue_since=None)
    updated = (
        await conn.execute(_REPAY, {"b_id": loan.id, "b_outstanding_fen": loan.outstanding_fen, **values})
    ).first()
    if updated is None:
        raise InvalidState(f"loan {loan.id} changed meanwhile; retry")
    if loan.overdue_since is not None and values.get("overdue_since", loan.overdue_since) is None:
        await overdue_spells.cure(conn, loan.id, cured_on=paid_on)
    repayment = Repayment(
        id=new_id("rep"),
        loan_id=loan.id,
        principal_fen=principal_fen,
        interest_fen=interest_fen,
        paid_on=paid_on,
        outstanding_after_fen=outstanding,
        created_at=utcnow(),
        created_by=actor.client_id,
    )
    await conn.execute(
        _INSERT_REPAYMENT, {f.name: getattr(repayment, f.name) for f in dataclasses.fields(repayment)}
    )
    tx.audit(
        "loan.repaid" if outstanding == 0 else "loan.repayment",
        "loan",
        loan.id,
        {
            "repayment_id": repayment.id,
            "principal_fen": principal_fen,
            "interest_fen": interest_fen,
            "paid_on": paid_on.isoformat(),
            "outstanding_fen": outstanding,
            "status": "repaid" if outstanding == 0 else loan.status,
        },
        region_code=loan.region_code,
    )
    stored = {"stored_status" if key == "status" else key: value for key, value in values.items()}
    interest_paid = int(updated.interest_paid_fen) + interest_fen  # this repayment's row came after
    now = queries.with_interest_paid(queries.restated(loan, today, **stored), interest_paid)
    return now, repayment


async def extend(tx: Tx, loan: LockedLoan, *, new_maturity_on: date, guarantor_consent: bool) -> None:
    """One extension (展期) under the policy in force on the contract date: at most
    `extension_max_count` of them, each at most `extension_max_months` beyond the current maturity,
    with the consent of the guarantors or joint group where the policy asks for it, agreed on or before
    the maturity date (贷款通则 第十二条: an extension is applied for before the loan falls due)."""
    conn, today = tx.conn, tx.today
    _require_active(loan)
    if new_maturity_on <= loan.maturity_on:
        raise invalid("new_maturity_on", f"must be after the current maturity ({loan.maturity_on})")
    app = await application_queries.get_application(conn, loan.application_id, today)
    policy = await fund_policy(conn, loan.fund_code, loan.contracted_on)
    max_count = policy.integer("extension_max_count")
    max_months = policy.integer("extension_max_months")
    latest = add_months(loan.maturity_on, max_months)

    def refuse(reason: str, detail: str, **facts: object) -> ExtensionNotAllowed:
        return ExtensionNotAllowed(detail, reason=reason, **facts)

    if loan.extension_count >= max_count:
        raise refuse(
            "count",
            f"the loan has had {loan.extension_count} extension(s); {policy.edition} allows {max_count}",
            extension_count=loan.extension_count,
            extension_max_count=max_count,
        )
    if new_maturity_on > latest:
        raise refuse(
            "too_long",
            f"an extension may reach at most {max_months} months beyond the maturity {loan.maturity_on},"
            f" i.e. {latest}",
            maturity_on=loan.maturity_on.isoformat(),
            latest_maturity_on=latest.isoformat(),
        )
    needs_consent = policy.flag("extension_needs_guarantor_consent") and app.guarantee_kind in CONSENT_KINDS
    if needs_consent and not guarantor_consent:
        raise refuse(
            "guarantor_consent",
            f"a loan with a {app.guarantee_kind} guarantee needs the consent of its"
            f" {'guarantors' if app.guarantee_kind == 'guarantor' else 'joint group'} to be extended",
        )
    if today > loan.maturity_on:
        raise refuse(
            "matured",
            f"an extension must be agreed by the maturity date {loan.maturity_on}; the loan is past due",
            maturity_on=loan.maturity_on.isoformat(),
        )
    result = await conn.execute(
        loans.update()
        .where(loans.c.id == loan.id, loans.c.extension_count == loan.extension_count)
        .values(maturity_on=new_maturity_on, extension_count=loan.extension_count + 1)
    )
    if result.rowcount != 1:
        raise InvalidState(f"loan {loan.id} changed meanwhile; retry")
    extension_id = new_id("ext")
    await conn.execute(
        loan_extensions.insert().values(
            id=extension_id,
            loan_id=loan.id,
            previous_maturity_on=loan.maturity_on,
            new_maturity_on=new_maturity_on,
            guarantor_consent=guarantor_consent,
            extended_on=today,
            created_at=utcnow(),
            created_by=tx.actor.client_id,
        )
    )
    tx.audit(
        "loan.extended",
        "loan",
        loan.id,
        {
            "extension_id": extension_id,
            "previous_maturity_on": loan.maturity_on.isoformat(),
            "new_maturity_on": new_maturity_on.isoformat(),
            "guarantor_consent": guarantor_consent,
        },
        region_code=loan.region_code,
    )


async def report_overdue(
    tx: Tx,
    loan: LockedLoan,
    *,
    overdue_since: date,
    overdue_principal_fen: int,
    overdue_interest_fen: int = 0,
) -> None:
    """A missed instalment: the loan is overdue from `overdue_since` (its first overdue day) with
    `overdue_principal` and `overdue_interest` unpaid. Each report is recorded as an instalment of its
    own (loanfund/loans/delinquency.py): the loan is overdue from the oldest one not yet paid, and its
    overdue principal is what those still miss."""
    conn = tx.conn
    not_in_future(overdue_since, "overdue_since", tx.today)
    _require_active(loan)
    if overdue_since <= loan.disbursed_on:
        raise invalid("overdue_since", f"must be after the loan was disbursed ({loan.disbursed_on})")
    if not 0 <= overdue_principal_fen <= loan.outstanding_fen:
        raise invalid("overdue_principal", "must not be more than the outstanding principal")
    if overdue_interest_fen < 0:
        raise invalid("overdue_interest", "must not be negative")
    await delinquency.record_missed(
        conn,
        loan_id=loan.id,
        overdue_since=overdue_since,
        principal_fen=overdue_principal_fen,
        interest_fen=overdue_interest_fen,
        reported_on=tx.today,
        client_id=tx.actor.client_id,
    )
    open_ = delinquency.still_missed((await delinquency.missed_instalments(conn, [loan.id]))[loan.id])
    since = min(day for day in (open_.overdue_since, loan.overdue_since, overdue_since) if day is not None)
    await conn.execute(
        loans.update()
        .where(loans.c.id == loan.id)
        .values(
            overdue_since=since, overdue_principal_fen=min(open_.overdue_principal_fen, loan.outstanding_fen)
        )
    )
    await overdue_spells.open_or_move(conn, loan.id, previous_since=loan.overdue_since, since=since)
    tx.audit(
        "loan.overdue_reported",
        "loan",
        loan.id,
        {
            "overdue_since": since.isoformat(),
            "reported_overdue_since": overdue_since.isoformat(),
            "overdue_principal_fen": overdue_principal_fen,
            "overdue_interest_fen": overdue_interest_fen,
        },
        region_code=loan.region_code,
    )
