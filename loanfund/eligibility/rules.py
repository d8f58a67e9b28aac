"""The eligibility rules, as pure functions of the policy and the facts of one application.

Each rule gives a `Check` whose `detail` tells the window, in plain words with the numbers, why it
passed or failed. The policy is the fund's policy in force on `applied_on` (edition + overrides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import Any

from loanfund import policy as policies
from loanfund.identity import Gender, age_on, is_4050
from loanfund.money import format_fen
from loanfund.policy import Policy

GUARANTEE_KINDS = ("credit", "guarantor", "collateral", "joint")
# Whose loan it is: the 2018 rule covers the borrower's and the spouse's other loans.
OTHER_LOAN_HOLDERS = ("borrower", "spouse")
# Kinds a window records; the policy's `other_loans_rule` says which of them are permitted.
OTHER_LOAN_RECORDED_KINDS = (*policies.OTHER_LOAN_KINDS, "business", "other")


@dataclass(frozen=True)
class Check:
    rule: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    is_4050: bool
    policy_edition: str
    checks: tuple[Check, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "eligible": self.eligible,
            "is_4050": self.is_4050,
            "policy_edition": self.policy_edition,
            "checks": [check.to_json() for check in self.checks],
        }


@dataclass(frozen=True)
class CertificateFacts:
    kind: str
    issued_on: date
    inspected_year: int


@dataclass(frozen=True)
class BorrowerFacts:
    kind: str  # individual | enterprise
    birth_date: date | None = None
    gender: Gender | None = None
    categories: tuple[str, ...] = ()
    certificates: tuple[CertificateFacts, ...] = ()
    credit_community: bool = False
    syb_trained: bool = False
    staff_count: int | None = None
    eligible_new_hires: int | None = None
    graduation_year: int | None = None
    # The SYB-trained borrower's business plan, approved on this date (the credit-guarantee waiver).
    syb_plan_approved_on: date | None = None


@dataclass(frozen=True)
class OtherLoanFacts:
    """A loan outside the programme, declared at application for the borrower or the spouse."""

    holder: str  # borrower | spouse
    kind: str  # one of OTHER_LOAN_RECORDED_KINDS
    outstanding_fen: int

    def to_json(self) -> dict[str, Any]:
        return {"holder": self.holder, "kind": self.kind, "outstanding_fen": self.outstanding_fen}


@dataclass(frozen=True)
class GuarantorFacts:
    id: str
    found: bool
    employer_kind: str | None = None
    is_borrower: bool = False  # the same person as the borrower


@dataclass(frozen=True)
class GuaranteeFacts:
    kind: str  # credit | guarantor | collateral | joint
    guarantors: tuple[GuarantorFacts, ...] = ()
    collateral_description: str | None = None
    joint_borrowers: tuple[tuple[str, bool], ...] = ()  # (borrower id, found)


@dataclass(frozen=True)
class History:
    """The borrower's record in this system: programme loans and applications in progress."""

    previous_loans: int = 0  # every programme loan, whatever its status
    outstanding_loans: int = 0  # active or overdue
    defaulted_loans: int = 0  # compensated or written off
    open_applications: int = 0  # submitted, or approved with an unlapsed guarantee


@dataclass(frozen=True)
class Request:
    amount_fen: int
    term_months: int
    applied_on: date
    guarantee: GuaranteeFacts
    borrower: BorrowerFacts
    history: History = field(default_factory=History)
    # The other members of a partnership (合伙经营); empty for a borrower applying alone.
    partners: tuple[BorrowerFacts, ...] = ()
    # Each partner's own record, in the order of `partners` (missing ones: no record).
    partner_histories: tuple[History, ...] = ()
    other_loans: tuple[OtherLoanFacts, ...] = ()


def _yuan(fen: int) -> str:
    return f"{format_fen(fen)} yuan"


def _list(items: tuple[str, ...] | list[str]) -> str:
    return ", ".join(items) if items else "none"


def _firms_admitted(policy: Policy) -> bool:
    return policy.flag("small_firms_admitted") and policy.admits("small_firm_cap")


def borrower_is_4050(borrower: BorrowerFacts, applied_on: date) -> bool:
    if borrower.kind != "individual" or borrower.birth_date is None or borrower.gender is None:
        return False
    if applied_on < borrower.birth_date:
        return False
    return is_4050(borrower.birth_date, borrower.gender, applied_on)


def check_small_firm(policy: Policy) -> Check:
    if _firms_admitted(policy):
        return Check("small_firm_admitted", True, f"Small firms may borrow under {policy.edition}.")
    return Check(
        "small_firm_admitted",
        False,
        f"Small firms are not admitted under {policy.edition}; only individuals.",
    )


def check_age(policy: Policy, borrower: BorrowerFacts, applied_on: date) -> Check:
    max_age = policy.integer("borrower_max_age")
    if borrower.birth_date is None:
        return Check("age", False, "The borrower's birth date is unknown.")
    if applied_on < borrower.birth_date:
        return Check("age", False, f"The application date {applied_on} is before the borrower's birth date.")
    age = age_on(borrower.birth_date, applied_on)
    if age <= max_age:
        return Check("age", True, f"Age {age} on {applied_on} is within the maximum of {max_age}.")
    return Check("age", False, f"Age {age} on {applied_on} is above the maximum of {max_age}.")


def admitted_categories(policy: Policy, borrower: BorrowerFacts) -> list[str]:
    admitted = policy.categories()
    return [category for category in borrower.categories if category in admitted]


def _certificate_missing(policy: Policy, borrower: BorrowerFacts, applied_on: date) -> str | None:
    if not policy.flag("laid_off_certificate_required"):
        return None
    year = applied_on.year
    if any(
        cert.kind == "reemployment" and cert.inspected_year == year and cert.issued_on <= applied_on
        for cert in borrower.certificates
    ):
        return None
    inspected = sorted({cert.inspected_year for cert in borrower.certificates if cert.kind == "reemployment"})
    seen = f" (certificates on file are inspected for {', '.join(map(str, inspected))})" if inspected else ""
    return f"needs a re-employment certificate inspected for {year}{seen}"


def _graduation_missing(policy: Policy, borrower: BorrowerFacts, applied_on: date) -> str | None:
    window = policy.optional_integer("graduate_window_years")
    if window is None:
        return None
    year = borrower.graduation_year
    if year is None:
        return f"needs a graduation year (graduates count for {window} years after graduating)"
    if year > applied_on.year:
        return f"graduates in {year}, after the application year {applied_on.year}"
    if applied_on.year - year > window:
        return (
            f"graduated in {year}, {applied_on.year - year} years before {applied_on.year};"
            f" graduates count for {window} years"
        )
    return None


def unproven_categories(policy: Policy, borrower: BorrowerFacts, applied_on: date) -> dict[str, str]:
    """Admitted categories claimed without the fact that proves them, each with what is missing.

    A claim without its proof does not count; the borrower may still qualify by another category.
    """
    missing: dict[str, str] = {}
    for category in admitted_categories(policy, borrower):
        if category == "laid_off":
            reason = _certificate_missing(policy, borrower, applied_on)
        elif category == "graduate":
            reason = _graduation_missing(policy, borrower, applied_on)
        else:
            reason = None
        if reason is not None:
            missing[category] = reason
    return missing


def check_category(policy: Policy, borrower: BorrowerFacts, applied_on: date) -> Check:
    admitted = admitted_categories(policy, borrower)
    if not admitted:
        return Check(
            "category",
            False,
            f"None of the borrower's categories ({_list(borrower.categories)}) is admitted under"
            f" {policy.edition}, which admits {_list(policy.categories())}.",
        )
    unproven = unproven_categories(policy, borrower, applied_on)
    proven = [category for category in admitted if category not in unproven]
    notes = "".join(f" {category} does not count: it {reason}." for category, reason in unproven.items())
    if not proven:
        return Check(
            "category",
            False,
            f"Category {_list(admitted)} is admitted under {policy.edition}, but no claim is proven.{notes}",
        )
    also = f" (also {_list(proven[1:])})" if len(proven) > 1 else ""
    return Check(
        "category",
        True,
        f"Admitted as {proven[0]}{also} under {policy.edition}; category {_list(admitted)} is admitted."
        f"{notes}",
    )


def _proof_check(
    rule: str, category: str, policy: Policy, borrower: BorrowerFacts, applied_on: date, proven_text: str
) -> Check | None:
    """The proof of one claimed category: passes with the proof, or when another proven category carries."""
    if category not in admitted_categories(policy, borrower):
        return None
    unproven = unproven_categories(policy, borrower, applied_on)
    if category not in unproven:
        return Check(rule, True, proven_text)
    others = [c for c in admitted_categories(policy, borrower) if c != category and c not in unproven]
    if others:
        return Check(
            rule,
            True,
            f"The {category} claim {unproven[category]}, so it does not count; the borrower is admitted"
            f" as {_list(others)} instead.",
        )
    return Check(rule, False, f"A {category} borrower {unproven[category]}.")


def check_reemployment_certificate(policy: Policy, borrower: BorrowerFacts, applied_on: date) -> Check | None:
    """Only when the borrower claims laid_off and the policy asks for the certificate."""
    if not policy.flag("laid_off_certificate_required"):
        return None
    return _proof_check(
        "reemployment_certificate",
        "laid_off",
        policy,
        borrower,
        applied_on,
        f"A re-employment certificate is inspected for {applied_on.year}.",
    )


def check_graduation(policy: Policy, borrower: BorrowerFacts, applied_on: date) -> Check | None:
    """Only when the borrower claims graduate and the policy limits the years after graduation."""
    window = policy.optional_integer("graduate_window_years")
    if window is None:
        return None
    return _proof_check(
        "graduation_year",
        "graduate",
        policy,
        borrower,
        applied_on,
        f"Graduated in {borrower.graduation_year}, within the {window} years after graduation that"
        f" {policy.edition} allows on {applied_on}.",
    )


def check_amount(policy: Policy, borrower: BorrowerFacts, amount_fen: int, members: int = 1) -> Check:
    if borrower.kind == "individual" and members > 1:
        cap, what = policies.partnership_cap_fen(policy, members), f"partnership cap for {members} members"
    elif borrower.kind == "individual":
        cap, what = policy.money("individual_cap"), "individual cap"
    elif not policy.admits("small_firm_cap"):
        return Check("amount_cap", False, f"Small-firm loans are not admitted under {policy.edition}.")
    else:
        cap, what = policy.money("small_firm_cap"), "small-firm cap"
    if amount_fen <= cap:
        return Check("amount_cap", True, f"Amount {_yuan(amount_fen)} is within the {what} of {_yuan(cap)}.")
    return Check("amount_cap", False, f"Amount {_yuan(amount_fen)} is above the {what} of {_yuan(cap)}.")


def check_new_hires(policy: Policy, borrower: BorrowerFacts) -> Check:
    if not _firms_admitted(policy) or not policy.admits("firm_size_threshold_staff"):
        return Check("new_hire_share", False, f"Small-firm loans are not admitted under {policy.edition}.")
    staff = borrower.staff_count or 0
    hires = borrower.eligible_new_hires or 0
    if staff < 1:
        return Check("new_hire_share", False, "The firm's staff count is unknown.")
    required = policies.firm_new_hire_share_pct(policy, staff)
    threshold = policy.integer("firm_size_threshold_staff")
    size = f"at most {threshold}" if staff <= threshold else f"more than {threshold}"
    share = (Decimal(hires * 100) / staff).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    passed = hires * 100 >= required * staff  # exact: no rounded share decides
    verb = "meets" if passed else "is below"
    return Check(
        "new_hire_share",
        passed,
        f"{hires} eligible new hires among {staff} staff is {share}%, which {verb} the {required}% required"
        f" of a firm with {size} staff.",
    )


def check_term(policy: Policy, borrower: BorrowerFacts, term_months: int) -> Check:
    if borrower.kind == "individual":
        name, what = "max_term_individual_months", "individual loans"
    else:
        name, what = "max_term_firm_months", "small-firm loans"
        if not policy.admits(name):
            return Check("term", False, f"Small-firm loans are not admitted under {policy.edition}.")
    max_term = policy.integer(name)
    if term_months <= max_term:
        return Check(
            "term", True, f"Term {term_months} months is within the {max_term} months allowed for {what}."
        )
    return Check(
        "term", False, f"Term {term_months} months is longer than the {max_term} months allowed for {what}."
    )


def check_repeat_support(policy: Policy, history: History) -> Check:
    """Every programme loan counts, whether the person borrowed alone or as a partner."""
    limit = policy.optional_integer("repeat_support_max")
    number = history.previous_loans + 1
    if limit is None:
        return Check(
            "repeat_support",
            True,
            f"No limit on repeat support under {policy.edition}; this would be support number {number}.",
        )
    if number <= limit:
        return Check(
            "repeat_support",
            True,
            f"This would be support number {number}; the policy allows at most {limit}.",
        )
    return Check(
        "repeat_support",
        False,
        f"The borrower has had {history.previous_loans} programme loans; the policy allows at most {limit}.",
    )


def check_no_outstanding(history: History) -> Check:
    if history.outstanding_loans == 0:
        return Check("no_outstanding_loan", True, "The borrower has no programme loan outstanding.")
    return Check(
        "no_outstanding_loan",
        False,
        f"The borrower has {history.outstanding_loans} programme loan(s) still outstanding"
        " (active or overdue).",
    )


def check_no_default(history: History) -> Check:
    if history.defaulted_loans == 0:
        return Check("no_default", True, "The borrower has no defaulted programme loan.")
    return Check(
        "no_default",
        False,
        f"The borrower has {history.defaulted_loans} defaulted programme loan(s)"
        " (compensated or written off).",
    )


def check_no_open_application(history: History) -> Check:
    if history.open_applications == 0:
        return Check("no_open_application", True, "The borrower has no other application in progress.")
    return Check(
        "no_open_application",
        False,
        f"The borrower has {history.open_applications} other application(s) in progress (submitted, or"
        " approved and not lapsed); withdraw or finish it first.",
    )


def _loan_text(loan: OtherLoanFacts) -> str:
    return f"{loan.holder} {loan.kind} loan {_yuan(loan.outstanding_fen)}"


def check_other_loans(policy: Policy, loans: tuple[OtherLoanFacts, ...]) -> Check | None:
    """2018 on: borrower and spouse hold no other loans except the kinds the policy excepts."""
    rule = policy.value("other_loans_rule")
    if rule is None:
        if not loans:
            return None
        return Check(
            "other_loans",
            True,
            f"Other loans are not restricted under {policy.edition} ({'; '.join(map(_loan_text, loans))}).",
        )
    assert isinstance(rule, policies.OtherLoansRule)
    counted = [loan for loan in loans if rule.includes_spouse or loan.holder == "borrower"]
    who = "the borrower and spouse" if rule.includes_spouse else "the borrower"
    kinds = [kind for kind in rule.excepted if kind != "consumer"]
    allowed = ", ".join(kinds)
    if "consumer" in rule.excepted:
        allowed += f" loans and consumer loans up to {_yuan(rule.consumer_loan_max)}"
    else:
        allowed += " loans"
    refused = [
        loan
        for loan in counted
        if not policies.evaluate_other_loans_permitted(rule, [(loan.kind, loan.outstanding_fen)])
    ]
    if refused:
        return Check(
            "other_loans",
            False,
            f"Under {policy.edition} {who} may hold only {allowed}; not permitted:"
            f" {'; '.join(map(_loan_text, refused))} outstanding.",
        )
    declared = "; ".join(map(_loan_text, counted)) if counted else "none declared"
    return Check(
        "other_loans",
        True,
        f"Other loans of {who} are permitted under {policy.edition} (only {allowed}): {declared}.",
    )


def _syb_plan_approved(borrower: BorrowerFacts, applied_on: date) -> bool:
    approved = borrower.syb_plan_approved_on
    return borrower.syb_trained and approved is not None and approved <= applied_on


def _waiver_facts(borrower: BorrowerFacts, applied_on: date) -> str:
    facts = [
        "recommended by a credit community"
        if borrower.credit_community
        else "no credit-community recommendation"
    ]
    if _syb_plan_approved(borrower, applied_on):
        facts.append(f"SYB trained with a business plan approved on {borrower.syb_plan_approved_on}")
    elif borrower.syb_trained and borrower.syb_plan_approved_on is not None:
        facts.append(f"SYB trained, business plan approved only on {borrower.syb_plan_approved_on}")
    elif borrower.syb_trained:
        facts.append("SYB trained without an approved business plan")
    else:
        facts.append("no SYB training")
    return "; ".join(facts)


def check_guarantee_kind(
    policy: Policy, borrower: BorrowerFacts, amount_fen: int, kind: str, applied_on: date
) -> Check:
    if kind != "credit":
        return Check("guarantee_kind", True, f"A {kind} counter-guarantee is admitted.")
    waiver = policy.value("credit_guarantee_waiver")
    if waiver is policies.NOT_ADMITTED:
        return Check("guarantee_kind", False, f"Credit guarantees are not admitted under {policy.edition}.")
    if borrower.kind != "individual":
        return Check("guarantee_kind", False, "Credit guarantees are for individual borrowers only.")
    allowed = policies.credit_guarantee_allowed(
        policy,
        borrower_kind="individual",
        amount_fen=amount_fen,
        credit_community=borrower.credit_community,
        syb_trained_with_plan=_syb_plan_approved(borrower, applied_on),
    )
    conditions = []
    if isinstance(waiver, policies.CreditGuaranteeWaiver):
        if waiver.credit_community:
            conditions.append("a credit-community recommendation")
        if waiver.syb_training_with_plan:
            conditions.append("SYB training with an approved business plan")
        if waiver.individual_loan_max is not None:
            conditions.append(f"an individual loan of at most {_yuan(waiver.individual_loan_max)}")
    needs = " or ".join(conditions)
    has = f" (the borrower: {_waiver_facts(borrower, applied_on)}; amount {_yuan(amount_fen)})"
    if allowed:
        return Check("guarantee_kind", True, f"A credit guarantee is allowed with {needs}{has}.")
    return Check(
        "guarantee_kind",
        False,
        f"A credit guarantee needs {needs} under {policy.edition}; the borrower has none of these{has}.",
    )


def check_counter_guarantee(policy: Policy, guarantee: GuaranteeFacts) -> Check | None:
    if guarantee.kind == "guarantor":
        kinds = policy.employer_kinds()
        problems = []
        for g in guarantee.guarantors:
            if not g.found:
                problems.append(f"guarantor {g.id} is not registered")
            elif g.is_borrower:
                problems.append(f"guarantor {g.id} is the borrower")
            elif g.employer_kind not in kinds:
                problems.append(
                    f"guarantor {g.id} works in {g.employer_kind}; under {policy.edition} guarantors must"
                    f" work in {' or '.join(kinds)}"
                )
        if not guarantee.guarantors:
            problems.append("no guarantor is named")
        if problems:
            return Check("guarantors", False, "; ".join(problems).capitalize() + ".")
        count = len(guarantee.guarantors)
        return Check(
            "guarantors",
            True,
            f"{count} guarantor(s), each registered and working in {' or '.join(kinds)}.",
        )
    if guarantee.kind == "joint":
        missing = [member for member, found in guarantee.joint_borrowers if not found]
        if missing or not guarantee.joint_borrowers:
            what = (
                f"joint borrower(s) {_list(missing)} not registered"
                if missing
                else "no joint borrower is named"
            )
            return Check("joint_borrowers", False, what.capitalize() + ".")
        return Check(
            "joint_borrowers",
            True,
            f"{len(guarantee.joint_borrowers)} other member(s) of the joint group are registered.",
        )
    if guarantee.kind == "collateral":
        if guarantee.collateral_description and guarantee.collateral_description.strip():
            return Check("collateral", True, "The collateral is described.")
        return Check("collateral", False, "A collateral guarantee needs a collateral description.")
    return None


def partner_checks(
    policy: Policy,
    borrower: BorrowerFacts,
    partners: tuple[BorrowerFacts, ...],
    histories: tuple[History, ...],
    applied_on: date,
) -> list[Check | None]:
    """Each partner must be eligible as a person, with their own record, by the applicant's rules."""
    if borrower.kind != "individual" or any(partner.kind != "individual" for partner in partners):
        return [Check("partnership", False, "A partnership is formed by individuals only.")]
    checks: list[Check | None] = []
    for number, partner in enumerate(partners, start=2):
        history = histories[number - 2] if number - 2 < len(histories) else History()
        for check in (
            check_age(policy, partner, applied_on),
            check_category(policy, partner, applied_on),
            check_reemployment_certificate(policy, partner, applied_on),
            check_graduation(policy, partner, applied_on),
            check_repeat_support(policy, history),
            check_no_outstanding(history),
            check_no_default(history),
            check_no_open_application(history),
        ):
            if check is not None:
                # The shared rules speak of "the borrower"; here the person is a partner, named by number.
                detail = check.detail.replace("The borrower", "The partner")
                checks.append(Check(f"partner_{check.rule}", check.passed, f"Member {number}: {detail}"))
    return checks


def evaluate(policy: Policy, request: Request) -> Eligibility:
    """Every rule of `policy` for one application; eligible only when every check passed."""
    borrower, history, applied_on = request.borrower, request.history, request.applied_on
    checks: list[Check | None] = []
    if borrower.kind == "individual":
        checks += [
            check_age(policy, borrower, applied_on),
            check_category(policy, borrower, applied_on),
            check_reemployment_certificate(policy, borrower, applied_on),
            check_graduation(policy, borrower, applied_on),
        ]
    else:
        checks += [check_small_firm(policy)]
    if request.partners:
        checks += partner_checks(policy, borrower, request.partners, request.partner_histories, applied_on)
    checks.append(check_amount(policy, borrower, request.amount_fen, 1 + len(request.partners)))
    if borrower.kind != "individual":
        checks.append(check_new_hires(policy, borrower))
    checks += [
        check_term(policy, borrower, request.term_months),
        check_repeat_support(policy, history),
        check_no_outstanding(history),
        check_no_default(history),
        check_no_open_application(history),
        check_other_loans(policy, request.other_loans),
        check_guarantee_kind(policy, borrower, request.amount_fen, request.guarantee.kind, applied_on),
        check_counter_guarantee(policy, request.guarantee),
    ]
    done = tuple(check for check in checks if check is not None)
    return Eligibility(
        eligible=all(check.passed for check in done),
        is_4050=borrower_is_4050(borrower, applied_on),
        policy_edition=policy.edition,
        checks=done,
    )
