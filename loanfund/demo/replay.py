"""The replay: the steps of the history (registrations, applications, decisions, loans, repayments)
executed through the library's services in date order, as the API would have made them."""

from __future__ import annotations

import contextlib
import heapq
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund import policy as policies
from loanfund import uow
from loanfund.agreements import reservations
from loanfund.agreements.capacity import pair_capacity
from loanfund.applications import queries as application_queries
from loanfund.applications import service as application_service
from loanfund.audit import Actor
from loanfund.borrowers import queries as borrower_queries
from loanfund.borrowers import service as borrower_service
from loanfund.borrowers.queries import Certificate
from loanfund.demo.province import (
    _BANK_REJECTIONS,
    _COLLATERAL,
    _FUND_REJECTIONS,
    _WITHDRAWALS,
    LAPSE_JOB,
    NEAR_LIMIT,
    NEAR_LIMIT_TARGET,
    SEED,
    CitySpec,
    Step,
)
from loanfund.eligibility.service import ApplicationRequest, GuaranteeRequest
from loanfund.errors import GuarantorLimitExceeded, LeverageExceeded
from loanfund.guarantors import queries as guarantor_queries
from loanfund.identity import Gender
from loanfund.loans import queries as loan_queries
from loanfund.loans import service as loan_service
from loanfund.money import fen_to_decimal, parse_yuan, round_to_fen
from loanfund.policy import Policy
from loanfund.rates.reference import RateTable
from loanfund.rates.store import rate_table
from loanfund.terms import add_months
from loanfund.uow import Tx


@dataclass(order=True)
class Event:
    day: date
    rank: int  # 0 setup and registrations, 1 lending, 9 the near-limit bank's last lending
    seq: int
    step: Step = field(compare=False)


@dataclass
class Holder:
    """A borrower to be: a person or a small firm, registered by its city's window."""

    fund: str
    name: str
    number: str  # resident ID or USCC
    kind: str  # individual | enterprise
    birth: date | None = None
    gender: Gender | None = None
    district: str = ""
    categories: tuple[str, ...] = ()
    certificate_issued: date | None = None  # a re-employment certificate (laid_off)
    credit_community: bool = False
    syb_trained: bool = False
    phone: str | None = None
    staff: int = 0
    new_hires: int = 0
    borrower_id: str | None = None
    registration_planned: bool = False


@dataclass
class Case:
    """One application and, once disbursed, its loan."""

    holder: Holder
    bank: str
    amount_fen: int
    term: int
    purpose: str
    jobs: int
    principal_fen: int = 0  # 0: the whole guarantee
    style: str = "quarterly"  # see _STYLES
    part_fen: int = 0
    app_id: str | None = None
    loan_id: str | None = None
    alive: bool = True
    outstanding_fen: int = 0
    rate_pct: Decimal = Decimal(0)
    last_paid: date | None = None
    guarantor_ids: tuple[str, ...] = ()
    awaiting_decision: bool = False


@dataclass
class DemoFund:
    spec: CitySpec
    policy: Policy
    window: Actor
    agreements: dict[str, str] = field(default_factory=dict)  # bank → agreement id
    guarantors: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)  # individual borrower ids, for joint groups


def _workday(day: date, today: date) -> date:
    """Weekend days move to the Monday after, never past today."""
    if day.weekday() >= 5:
        day += timedelta(days=7 - day.weekday())
    return min(day, today)


# How a loan is repaid: the months whose 20th is a payment day (结息日), and what is paid then. The
# principal left is paid at maturity.
_STYLES: dict[str, tuple[tuple[int, ...], str]] = {
    "quarterly": ((3, 6, 9, 12), "interest"),  # 按季付息、到期还本
    "instalments": ((6, 12), "part"),  # 分期还本: a part of the principal with interest each half-year
    "at_maturity": ((), "interest"),  # 到期一次还本付息
}


def _due_days(after: date, before: date, months: tuple[int, ...]) -> list[date]:
    """Payment days (the 20th of the given months) strictly between two dates."""
    days: list[date] = []
    if not months:
        return days
    year = after.year
    while True:
        for month in months:
            day = date(year, month, 20)
            if day >= before:
                return days
            if day > after:
                days.append(day)
        year += 1


class Replay:
    """Replays the planned history in date order, each step a unit of work by its actor on its day,
    all in the demo's one transaction."""

    def __init__(self, conn: AsyncConnection, today: date, actors: dict[str, Actor]) -> None:
        self.conn = conn
        self.today = today
        self.rng = random.Random(SEED)
        self.actors = actors
        self.manager = actors["fund_manager"]
        self.queue: list[Event] = []
        self.seq = 0
        self.funds: dict[str, DemoFund] = {}
        self.loan_numbers: Counter[str] = Counter()
        self.pending: Counter[str] = Counter()  # guarantor → applications submitted, not yet decided
        self.rates: RateTable | None = None
        self.top_up_pool: list[Holder] = []
        self.refused: Counter[str] = Counter()
        self.expiring: dict[str, date] = {}  # application → last day of its unconverted reservation

    @contextlib.asynccontextmanager
    async def step(self, actor: Actor, day: date) -> AsyncIterator[Tx]:
        """One step of the history in the demo's single transaction, done by `actor` on `day`."""
        tx = uow.begin(self.conn, actor, day)
        yield tx
        await tx.flush()

    def at(self, day: date, step: Step, rank: int = 1) -> None:
        if day > self.today:
            raise AssertionError(f"a demo step planned after today: {day}")
        self.seq += 1
        heapq.heappush(self.queue, Event(day, rank, self.seq, step))

    async def run(self, progress: Callable[[int, int], None] | None = None) -> None:
        current: date | None = None
        total, done = len(self.queue), 0
        while self.queue:
            event = heapq.heappop(self.queue)
            done += 1
            if progress is not None and (done % 25 == 0 or not self.queue):
                total = max(total, done + len(self.queue))  # steps can plan further steps
                progress(done, total)
            if event.day != current:
                current = event.day
                # The scheduler's daily lapse job, on the days it has something to do.
                if any(last < current for last in self.expiring.values()):
                    async with self.step(LAPSE_JOB, current) as tx:
                        await reservations.lapse_expired(tx)
                    self.expiring = {app: last for app, last in self.expiring.items() if last >= current}
            await event.step(event.day)

    async def register(self, holder: Holder, day: date) -> None:
        fund = self.funds[holder.fund]
        if holder.kind == "enterprise":
            async with self.step(fund.window, day) as tx:
                holder.borrower_id = await borrower_service.register_enterprise(
                    tx,
                    uscc=holder.number,
                    name=holder.name,
                    staff_count=holder.staff,
                    eligible_new_hires=holder.new_hires,
                    categories=holder.categories,
                    region_code=fund.spec.prefix,
                )
            return
        certificates = []
        if holder.certificate_issued is not None:
            serial = f"{holder.district}{holder.certificate_issued:%y}{self.rng.randint(0, 99_999):05d}"
            certificates.append(Certificate("reemployment", serial, holder.certificate_issued, day.year))
        async with self.step(fund.window, day) as tx:
            holder.borrower_id = await borrower_service.register_individual(
                tx,
                id_number=holder.number,
                name=holder.name,
                phone=holder.phone,
                categories=holder.categories,
                certificates=certificates,
                credit_community=holder.credit_community,
                syb_trained=holder.syb_trained,
                region_code=fund.spec.prefix,
                # The facts eligibility asks for: a recent graduate, a plan approved with the training.
                graduation_year=day.year - 1 if "graduate" in holder.categories else None,
                syb_plan_approved_on=day if holder.syb_trained else None,
            )
        fund.registered.append(holder.borrower_id)

    async def choose_guarantee(self, case: Case, fund: DemoFund, day: date) -> GuaranteeRequest:
        """Credit where the policy waives a counter-guarantee, else a guarantor with room, collateral,
        or (outside Harbin) a joint group."""
        holder = case.holder
        if holder.kind == "enterprise":
            return GuaranteeRequest("collateral", collateral_description="厂房及生产设备抵押")
        credit = policies.credit_guarantee_allowed(
            fund.policy,
            borrower_kind="individual",
            amount_fen=case.amount_fen,
            credit_community=holder.credit_community,
            syb_trained_with_plan=holder.syb_trained,
        )
        if credit and self.rng.random() < 0.8:
            return GuaranteeRequest("credit")
        kinds, weights = ("guarantor", "collateral", "joint"), (55, 25, 0 if fund.spec.code == "HRB" else 20)
        kind = self.rng.choices(kinds, weights)[0]
        if kind == "joint":
            members = [b for b in fund.registered if b != holder.borrower_id]
            if len(members) >= 2:
                return GuaranteeRequest("joint", joint_borrower_ids=tuple(self.rng.sample(members, 2)))
        if kind == "guarantor":
            wanted = 2 if case.amount_fen >= parse_yuan("150000") else 1
            counts = await guarantor_queries.active_guarantees(self.conn, fund.guarantors, day)
            limit = fund.policy.integer("guarantor_max_active")
            free = [g for g in fund.guarantors if counts[g] + self.pending[g] < limit]
            if len(free) >= wanted:
                return GuaranteeRequest("guarantor", guarantor_ids=tuple(self.rng.sample(free, wanted)))
        return GuaranteeRequest("collateral", collateral_description=self.rng.choice(_COLLATERAL))

    async def submit(self, case: Case, day: date) -> None:
        fund = self.funds[case.holder.fund]
        assert case.holder.borrower_id is not None
        borrower = await borrower_queries.get_borrower(self.conn, case.holder.borrower_id)
        guarantee = await self.choose_guarantee(case, fund, day)
        request = ApplicationRequest(
            fund_code=fund.spec.code,
            bank_code=case.bank,
            borrower_id=borrower.id,
            amount_fen=case.amount_fen,
            term_months=case.term,
            applied_on=day,
            guarantee=guarantee,
        )
        async with self.step(fund.window, day) as tx:
            case.app_id, _ = await application_service.submit(
                tx,
                request,
                borrower=borrower,
                purpose=case.purpose,
                micro_profit=case.holder.kind == "individual",
                jobs_created=case.jobs,
                region_prefix=fund.spec.prefix,
            )
        case.guarantor_ids = guarantee.guarantor_ids
        case.awaiting_decision = True
        self.pending.update(case.guarantor_ids)

    def decided(self, case: Case) -> None:
        if case.awaiting_decision:
            case.awaiting_decision = False
            self.pending.subtract(case.guarantor_ids)

    async def approve(self, case: Case, day: date) -> None:
        if not case.alive or case.app_id is None:
            return
        self.decided(case)
        try:  # a refused approval changes nothing (api.md), so the transaction goes on
            async with self.step(self.manager, day) as tx:
                app = await application_service.approve(
                    tx, await application_queries.lock_application(tx, case.app_id)
                )
            assert app.guarantee_expires_on is not None
            self.expiring[case.app_id] = app.guarantee_expires_on
        except (LeverageExceeded, GuarantorLimitExceeded) as exc:
            # What a fund office does when the bank is full: refuse, and say where to go instead.
            self.refused[exc.code] += 1
            case.alive = False
            reason = f"合作银行担保额度或反担保人条件不足，请改投其他合作银行 ({exc.code})"
            async with self.step(self.manager, day) as tx:
                locked = await application_queries.lock_application(tx, case.app_id)
                await application_service.reject(tx, locked, reason=reason)

    async def reject(self, case: Case, day: date, *, by_bank: bool) -> None:
        if not case.alive or case.app_id is None:
            return
        self.decided(case)
        self.expiring.pop(case.app_id, None)
        case.alive = False
        actor = self.actors[f"bank:{case.bank}"] if by_bank else self.manager
        reason = self.rng.choice(_BANK_REJECTIONS if by_bank else _FUND_REJECTIONS)
        async with self.step(actor, day) as tx:
            locked = await application_queries.lock_application(tx, case.app_id)
            await application_service.reject(tx, locked, reason=reason)

    async def withdraw(self, case: Case, day: date) -> None:
        if not case.alive or case.app_id is None:
            return
        self.decided(case)
        self.expiring.pop(case.app_id, None)
        case.alive = False
        window = self.funds[case.holder.fund].window
        reason = self.rng.choice(_WITHDRAWALS)
        async with self.step(window, day) as tx:
            locked = await application_queries.lock_application(tx, case.app_id)
            await application_service.withdraw(tx, locked, reason=reason)

    async def rate_for(self, case: Case, fund: DemoFund, day: date) -> Decimal:
        """What a bank would offer: the reference rate plus a spread, within the policy's ceiling."""
        if self.rates is None:
            self.rates = await rate_table(self.conn)
        reference = self.rates.for_loan(case.term, day).rate_pct
        ceiling = policies.rate_ceiling_pct(fund.policy, reference)
        spread = (ceiling - reference) * self.rng.choice((2, 3, 4, 5, 6)) / 6
        return min(ceiling, reference + spread.quantize(Decimal("0.05"), rounding=ROUND_DOWN))

    async def disburse(self, case: Case, day: date) -> None:
        if not case.alive or case.app_id is None:
            return
        self.loan_numbers[case.bank] += 1
        case.rate_pct = await self.rate_for(case, self.funds[case.holder.fund], day)
        case.principal_fen = case.principal_fen or case.amount_fen
        async with self.step(self.actors[f"bank:{case.bank}"], day) as tx:
            case.loan_id = (
                await loan_service.disburse(
                    tx,
                    await application_queries.lock_application(tx, case.app_id),
                    loan_number=f"{case.bank}-{day.year}-{self.loan_numbers[case.bank]:05d}",
                    principal_fen=case.principal_fen,
                    annual_rate_pct=case.rate_pct,
                    disbursed_on=day,
                    maturity_on=add_months(day, case.term),
                    contracted_on=None,
                )
            ).id
        self.expiring.pop(case.app_id, None)
        case.outstanding_fen = case.principal_fen
        case.last_paid = day

    async def pay(self, case: Case, day: date, *, mode: str) -> None:
        """A repayment: `interest` only, a `part` of the principal with interest, or `all` that is left."""
        if not case.alive or case.loan_id is None or case.outstanding_fen == 0 or case.last_paid is None:
            return
        days = (day - case.last_paid).days
        interest = round_to_fen(fen_to_decimal(case.outstanding_fen) * case.rate_pct / 100 * days / 360)
        principal = {
            "interest": 0,
            "part": min(case.part_fen, case.outstanding_fen),
            "all": case.outstanding_fen,
        }
        if principal[mode] == 0 and interest == 0:
            return
        async with self.step(self.actors[f"bank:{case.bank}"], day) as tx:
            await loan_service.repay(
                tx,
                await loan_queries.lock_loan(tx, case.loan_id),
                principal_fen=principal[mode],
                interest_fen=interest,
                paid_on=day,
            )
        case.outstanding_fen -= principal[mode]
        case.last_paid = day

    async def report_missed(self, case: Case, day: date, *, since: date) -> None:
        if case.alive and case.loan_id is not None:
            async with self.step(self.actors[f"bank:{case.bank}"], day) as tx:
                await loan_service.report_overdue(
                    tx,
                    await loan_queries.lock_loan(tx, case.loan_id),
                    overdue_since=since,
                    overdue_principal_fen=min(case.part_fen, case.outstanding_fen),
                )

    async def extend(self, case: Case, day: date, *, new_maturity: date) -> None:
        if case.alive and case.loan_id is not None:
            async with self.step(self.actors[f"bank:{case.bank}"], day) as tx:
                await loan_service.extend(
                    tx,
                    await loan_queries.lock_loan(tx, case.loan_id),
                    new_maturity_on=new_maturity,
                    guarantor_consent=True,
                )

    def max_term(self, holder: Holder) -> int:
        name = "max_term_individual_months" if holder.kind == "individual" else "max_term_firm_months"
        return self.funds[holder.fund].policy.integer(name)

    def term(self, holder: Holder, *options: int) -> int:
        return self.rng.choice([m for m in options if m <= self.max_term(holder)])

    async def top_up(self, day: date) -> None:
        """Today's last lending at the near-limit pair takes it to ~98.5% of its capacity: a firm's loan,
        then individuals', the last guarantee approved and not yet disbursed."""
        fund_code, bank = NEAR_LIMIT
        policy = self.funds[fund_code].policy
        for holder in self.top_up_pool:
            capacity = await pair_capacity(self.conn, fund_code, bank, today=day)
            gap = int(capacity.capacity_fen * NEAR_LIMIT_TARGET) - capacity.used_fen
            if gap < parse_yuan("20000"):
                return
            if holder.kind == "enterprise":
                amount = min(policy.money("small_firm_cap"), gap * 3 // 5 // 1_000_000 * 1_000_000)
                case = Case(holder, bank, amount, 24, "扩大生产、吸纳就业", holder.new_hires)
            else:
                amount = min(policy.money("individual_cap"), gap // 100_000 * 100_000)
                case = Case(holder, bank, amount, self.term(holder, 24, 36), "开办连锁门店", 2)
            await self.submit(case, day)
            await self.approve(case, day)
            if gap - amount >= parse_yuan("20000"):
                await self.disburse(case, day)
