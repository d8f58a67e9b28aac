"""Domain errors: one hierarchy, each with a stable `code` and the facts that explain it.

The library knows nothing of HTTP; `api.errors` maps each code to a status.
"""

from __future__ import annotations

from typing import Any


class LoanfundError(Exception):
    """Base of every refusal the library makes on purpose."""

    code = "invalid_state"
    title = "Request refused"

    def __init__(self, detail: str = "", **facts: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.facts = facts


class ValidationFailed(LoanfundError):
    code = "validation_error"
    title = "Invalid input"

    def __init__(self, errors: list[dict[str, str]], detail: str = "") -> None:
        super().__init__(detail or "; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def invalid(field: str, message: str) -> ValidationFailed:
    """The refusal of one field's value: `raise invalid("amount", "must be more than zero")`."""
    return ValidationFailed([{"field": field, "message": message}])


def stated_reason(reason: str) -> str:
    """A reason a person gives for a decision (a rejection, a withdrawal, a write-off): stripped,
    1–500 characters, else refused as `reason`."""
    reason = reason.strip()
    if not reason:
        raise invalid("reason", "must not be empty")
    if len(reason) > 500:
        raise invalid("reason", "must have at most 500 characters")
    return reason


class InvalidAmount(ValidationFailed):
    def __init__(self, field: str, message: str) -> None:
        super().__init__([{"field": field, "message": message}])


class MalformedRequest(LoanfundError):
    code = "malformed_request"
    title = "Malformed request"


class UnknownField(LoanfundError):
    code = "unknown_field"
    title = "Unknown field"


class FutureDate(LoanfundError):
    code = "future_date"
    title = "Date is in the future"


class NotFound(LoanfundError):
    code = "not_found"
    title = "Not found"


class Unauthenticated(LoanfundError):
    code = "unauthenticated"
    title = "Missing or invalid token"


class Forbidden(LoanfundError):
    code = "forbidden"
    title = "Not allowed for this role"


class Duplicate(LoanfundError):
    code = "duplicate"
    title = "Already exists"


class InvalidState(LoanfundError):
    code = "invalid_state"
    title = "Not possible in the current state"


class UnknownPolicyEdition(LoanfundError):
    code = "unknown_policy_edition"
    title = "Unknown policy edition"


class PolicyError(LoanfundError):
    """A policy file or override that does not fit the parameter registry (fails at start)."""

    code = "validation_error"
    title = "Invalid policy"


class InvalidIdNumber(LoanfundError):
    code = "invalid_id_number"
    title = "Invalid ID number"


class Ineligible(LoanfundError):
    code = "ineligible"
    title = "Not eligible"


class LeverageMultipleTooHigh(LoanfundError):
    code = "leverage_multiple_too_high"
    title = "Leverage multiple above the policy maximum"


class InsufficientFundCash(LoanfundError):
    code = "insufficient_fund_cash"
    title = "Not enough fund cash"


class LeverageExceeded(LoanfundError):
    code = "leverage_exceeded"
    title = "Not enough headroom at this bank"


class AgreementSuspended(LoanfundError):
    code = "agreement_suspended"
    title = "Agreement suspended"


class NoAgreement(LoanfundError):
    code = "no_agreement"
    title = "No agreement in force"


class GuarantorLimitExceeded(LoanfundError):
    code = "guarantor_limit_exceeded"
    title = "Guarantor backs too many loans"


class SameMakerChecker(LoanfundError):
    code = "same_maker_checker"
    title = "The submitter may not approve"


class NotApproved(LoanfundError):
    code = "not_approved"
    title = "Application not approved"


class GuaranteeLapsed(LoanfundError):
    code = "guarantee_lapsed"
    title = "Guarantee reservation lapsed"


class PrincipalExceedsGuarantee(LoanfundError):
    code = "principal_exceeds_guarantee"
    title = "Principal above the guarantee"


class TermTooLong(LoanfundError):
    code = "term_too_long"
    title = "Term longer than the policy allows"


class RateAboveCeiling(LoanfundError):
    code = "rate_above_ceiling"
    title = "Rate above the policy ceiling"


class Overpayment(LoanfundError):
    code = "overpayment"
    title = "More principal than outstanding"


class ExtensionNotAllowed(LoanfundError):
    code = "extension_not_allowed"
    title = "Extension not allowed"


class ClaimTooEarly(LoanfundError):
    code = "claim_too_early"
    title = "Claim too early"


class MissingReferenceRate(LoanfundError):
    code = "missing_reference_rate"
    title = "No reference rate for that date"


class PeriodNotClosed(LoanfundError):
    code = "period_not_closed"
    title = "Period not ended"


class InsufficientSubsidyBudget(LoanfundError):
    code = "insufficient_subsidy_budget"
    title = "Not enough subsidy budget"


class IdempotencyKeyRequired(LoanfundError):
    code = "idempotency_key_required"
    title = "Idempotency-Key header required"


class IdempotencyKeyReused(LoanfundError):
    code = "idempotency_key_reused"
    title = "Idempotency-Key reused with a different request"


class RequestInProgress(LoanfundError):
    code = "request_in_progress"
    title = "The first request with this key is still running"


class UnbalancedEntry(LoanfundError):
    """A journal entry the ledger refuses; a programming error if it ever reaches a user."""

    code = "invalid_state"
    title = "Journal entry refused"


class InsufficientDeposit(LoanfundError):
    code = "insufficient_deposit"
    title = "Not that much deposited at this bank"


class PayloadTooLarge(LoanfundError):
    code = "payload_too_large"
    title = "Request body too large"


class RateLimited(LoanfundError):
    code = "rate_limited"
    title = "Too many requests"


class SignInFailed(LoanfundError):
    """Unknown name, wrong password or disabled user: one answer for all, so names cannot be probed."""

    code = "sign_in_failed"
    title = "Wrong name or password"


class SignInLocked(LoanfundError):
    code = "sign_in_locked"
    title = "Too many failed sign-ins; try again later"


class CsrfRejected(LoanfundError):
    code = "csrf_rejected"
    title = "The form's security token is missing or wrong"


class SchemaOutOfDate(LoanfundError):
    """The database was never upgraded, or is behind this version's migrations."""

    code = "schema_out_of_date"
    title = "Database schema not upgraded"
