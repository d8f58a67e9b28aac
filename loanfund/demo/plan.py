"""The generators: the province's people (names, identity numbers, categories, guarantors, firms) and
what happens to them, planned as dated steps of the replay. Every draw comes from the replay's seeded
random generator, so the history is the same on every run."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal
from functools import partial

from loanfund import policy as policies
from loanfund.agreements import service as agreement_service
from loanfund.demo.identities import (
    organisation_code_check,
    resident_id_check,
    uscc_check,
)
from loanfund.demo.province import (
    _CATEGORY_PROFILES,
    _FIRM_BRANDS,
    _FIRM_TRADES,
    _GIVEN,
    _OUTCOMES,
    _PHONE_PREFIXES,
    _SURNAME_WEIGHTS,
    _SURNAMES,
    AGREEMENTS,
    CITIES,
    FIRM_BANKS,
    FIRST_APPLICATION,
    NEAR_LIMIT,
    AgreementSpec,
    CitySpec,
    Step,
)
from loanfund.demo.replay import (
    _STYLES,
    Case,
    DemoFund,
    Holder,
    Replay,
    _due_days,
    _workday,
)
from loanfund.funds import service as fund_service
from loanfund.guarantors import service as guarantor_service
from loanfund.identity import Gender, is_4050
from loanfund.money import parse_yuan
from loanfund.terms import add_months


class Plan:
    """Generates the province's people and history as dated steps of a `Replay`."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.taken: set[str] = set()  # identity numbers already made up

    def ago(self, days: int) -> date:
        return self.replay.today - timedelta(days=days)

    def wd(self, day: date) -> date:
        return _workday(day, self.replay.today)

    def between(self, first: date, last: date) -> date:
        if last <= first:
            return first
        return first + timedelta(days=self.replay.rng.randint(0, (last - first).days))

    def plan_funds(self) -> None:
        for spec in CITIES:
            self.plan_money_in(spec)
        for agreement in AGREEMENTS:
            self.plan_agreement(agreement)

    def plan_money_in(self, spec: CitySpec) -> None:
        """Allocations with matching met, overdue and pending; central money, interest, a subsidy budget."""
        manager, code = self.replay.manager, spec.code
        allocation_ids: dict[str, str] = {}

        def fen(text: str) -> int:
            return parse_yuan(text) * spec.scale

        # Positional, the day last: the plan below binds everything but the day.
        async def allocation(key: str, amount: str, ratio: str, due: date, reference: str, day: date) -> None:
            async with self.replay.step(manager, day) as tx:
                allocation_ids[key] = await fund_service.record_allocation(
                    tx,
                    fund_code=code,
                    amount_fen=fen(amount),
                    received_on=day,
                    reference=reference,
                    match_ratio_pct=Decimal(ratio),
                    match_due_on=due,
                )

        async def contribution(source: str, amount: str, reference: str, key: str, day: date) -> None:
            async with self.replay.step(manager, day) as tx:
                await fund_service.record_contribution(
                    tx,
                    fund_code=code,
                    source=source,
                    amount_fen=fen(amount),
                    received_on=day,
                    reference=f"{reference} {code}-{day.year}",
                    allocation_id=allocation_ids[key] if key else None,
                )

        async def subsidy(day: date) -> None:
            async with self.replay.step(manager, day) as tx:
                await fund_service.add_subsidy_budget(
                    tx,
                    fund_code=code,
                    # 牡丹江's budget is too small for its banks' claims: its payment waits for money.
                    amount_fen=fen("800000") if code != "MDJ" else parse_yuan("150"),
                    received_on=day,
                    reference=f"{code}-S",
                )

        def doc(days: int) -> str:
            return f"黑财金[{self.ago(days).year}]{self.replay.rng.randint(10, 99)}号 {code}"

        # Met: received two years ago, matched in full within the year. Overdue: half the 1:2 match
        # still missing a month after it was due. Pending: recent, partly matched, due in four months.
        match = "市级配套资金"
        plan: list[tuple[int, Step]] = [
            (730, partial(allocation, "P1", "5000000", "100", self.ago(550), doc(730))),
            (728, partial(contribution, "central", "2000000", "中央财政补助", "")),
            (640, partial(contribution, "local_match", "5000000", match, "P1")),
            (400, partial(allocation, "P2", "3000000", "50", self.ago(30), doc(400))),
            (370, partial(contribution, "deposit_interest", "61250.40", "专户利息", "")),
            (200, partial(contribution, "local_match", "600000", match, "P2")),
            (60, partial(allocation, "P3", "3000000", "100", self.ago(-120), doc(60))),
            (45, subsidy),
            (20, partial(contribution, "local_match", "1200000", match, "P3")),
            (5, partial(contribution, "deposit_interest", "48321.57", "专户利息", "")),
        ]
        if code == "HRB":
            plan.append((300, partial(contribution, "donation", "66666.67", "慈善总会捐赠", "")))
        for days, step in plan:
            self.replay.at(self.wd(self.ago(days)), step, rank=0)

    def plan_agreement(self, spec: AgreementSpec) -> None:
        manager, fund = self.replay.manager, spec.fund

        def agreement_id() -> str:
            return self.replay.funds[fund].agreements[spec.bank]

        async def create(day: date) -> None:
            async with self.replay.step(manager, day) as tx:
                agreement = await agreement_service.create_agreement(
                    tx,
                    fund_code=fund,
                    bank_code=spec.bank,
                    leverage_multiple=Decimal(spec.multiple),
                    fund_loss_share_pct=Decimal(spec.fund_share_pct),
                    claim_after_days=spec.claim_after_days,
                    claim_covers_interest=spec.covers_interest,
                    effective_from=day,
                )
            self.replay.funds[fund].agreements[spec.bank] = agreement

        async def deposit(day: date, amount: str, number: int) -> None:
            async with self.replay.step(manager, day) as tx:
                await agreement_service.deposit(
                    tx,
                    agreement_id(),
                    amount_fen=parse_yuan(amount),
                    deposited_on=day,
                    reference=f"{fund}-{spec.bank}-D{number}",
                )

        async def withdraw(day: date, amount: str) -> None:
            async with self.replay.step(manager, day) as tx:
                await agreement_service.withdraw(
                    tx,
                    agreement_id(),
                    amount_fen=parse_yuan(amount),
                    withdrawn_on=day,
                    reference=f"{fund}-{spec.bank}-W1 调回财政专户",
                )

        async def suspend(day: date, reason: str) -> None:
            async with self.replay.step(manager, day) as tx:
                await agreement_service.suspend(tx, agreement_id(), reason=reason)

        self.replay.at(self.wd(self.ago(spec.start)), create, rank=0)
        for number, (days, amount) in enumerate(spec.deposits, start=1):
            self.replay.at(self.wd(self.ago(days)), partial(deposit, amount=amount, number=number), rank=0)
        if spec.withdrawal is not None:
            self.replay.at(
                self.wd(self.ago(spec.withdrawal[0])), partial(withdraw, amount=spec.withdrawal[1]), rank=0
            )
        if spec.suspension is not None:
            self.replay.at(
                self.wd(self.ago(spec.suspension[0])), partial(suspend, reason=spec.suspension[1]), rank=0
            )

    def pick_bank(self, holder: Holder, applied: date, decided: date) -> str:
        """A bank of the fund that holds a deposit by `applied` and takes guarantees on `decided`."""
        options = []
        for spec in AGREEMENTS:
            if spec.fund != holder.fund:
                continue
            if holder.kind == "enterprise" and spec.bank not in FIRM_BANKS[holder.fund]:
                continue
            if (spec.fund, spec.bank) == NEAR_LIMIT and applied > self.ago(30):
                continue  # its last lending is the day's top-up
            if applied < self.ago(max(days for days, _ in spec.deposits) - 3):
                continue
            if spec.suspension is not None and decided >= self.ago(spec.suspension[0] + 3):
                continue
            options.append(spec)
        return self.replay.rng.choices([s.bank for s in options], [s.weight for s in options])[0]

    def name(self, gender: Gender, birth: date) -> str:
        surname = self.replay.rng.choices(_SURNAMES, _SURNAME_WEIGHTS)[0]
        return surname + self.replay.rng.choice(_GIVEN[(gender, birth.year <= 1985)])

    def birth(self, ages: tuple[int, int]) -> date:
        """A birth date of someone aged within `ages` (completed years) today."""
        age = self.replay.rng.randint(*ages)
        birthday = date(self.replay.today.year - age, self.replay.today.month, min(self.replay.today.day, 28))
        return birthday - timedelta(days=self.replay.rng.randint(0, 360))

    def resident_id(self, district: str, birth: date, gender: Gender) -> str:
        while True:
            odd = self.replay.rng.choice("13579" if gender == "male" else "02468")
            body = f"{district}{birth:%Y%m%d}{self.replay.rng.randint(1, 99):02d}{odd}"
            number = body + resident_id_check(body)
            if number not in self.taken:
                self.taken.add(number)
                return number

    def person(self, fund: DemoFund, category: str | None = None) -> Holder:
        admitted = fund.policy.categories()
        if category is None:
            choices = [c for c in _CATEGORY_PROFILES if c in admitted]
            category = self.replay.rng.choices(choices, [_CATEGORY_PROFILES[c][0] for c in choices])[0]
        _, ages, female_share, rural, _ = _CATEGORY_PROFILES[category]
        gender: Gender = "female" if self.replay.rng.random() < female_share else "male"
        birth = self.birth(ages)
        district = self.replay.rng.choice(fund.spec.rural if rural else fund.spec.urban)
        categories = [category]
        older = is_4050(birth, gender, self.replay.today)
        if category in ("laid_off", "bankrupt_soe_staff") and older and self.replay.rng.random() < 0.3:
            categories.append("hard_to_employ")
        if category == "veteran" and self.replay.rng.random() < 0.15:
            categories.append("registered_unemployed")
        issued = None
        if category == "laid_off":
            year = self.replay.today.year - self.replay.rng.randint(4, 14)
            issued = date(year, self.replay.rng.randint(1, 12), self.replay.rng.randint(1, 28))
        return Holder(
            fund=fund.spec.code,
            name=self.name(gender, birth),
            number=self.resident_id(district, birth, gender),
            kind="individual",
            birth=birth,
            gender=gender,
            district=district,
            categories=tuple(c for c in categories if c in admitted),
            certificate_issued=issued,
            credit_community=self.replay.rng.random() < 0.12,
            syb_trained=self.replay.rng.random()
            < {"graduate": 0.5, "returning_migrant": 0.4}.get(category, 0.15),
            phone=self.replay.rng.choice(_PHONE_PREFIXES) + f"{self.replay.rng.randint(0, 99_999_999):08d}",
        )

    def firm(self, fund: DemoFund, staff: tuple[int, int] = (18, 90)) -> Holder:
        district = self.replay.rng.choice(fund.spec.urban + fund.spec.rural)
        while True:
            organisation = f"{self.replay.rng.randint(10_000_000, 99_999_999)}"
            body = f"91{district}{organisation}{organisation_code_check(organisation)}"
            number = body + uscc_check(body)
            if number not in self.taken:
                self.taken.add(number)
                break
        staff_count = self.replay.rng.randint(*staff)
        needed = math.ceil(staff_count * policies.firm_new_hire_share_pct(fund.policy, staff_count) / 100)
        return Holder(
            fund=fund.spec.code,
            name=f"{fund.spec.city}{self.replay.rng.choice(_FIRM_BRANDS)}{self.replay.rng.choice(_FIRM_TRADES)}有限公司",
            number=number,
            kind="enterprise",
            district=district,
            categories=("small_firm",),
            staff=staff_count,
            new_hires=min(staff_count, needed + self.replay.rng.randint(0, 4)),
        )

    def plan_guarantors(self, fund: DemoFund) -> None:
        """Civil servants and public staff of the city, registered before the lending starts."""

        async def register(day: date, name: str, number: str, employer: str, kind: str, income: int) -> None:
            async with self.replay.step(fund.window, day) as tx:
                guarantor_id = await guarantor_service.register(
                    tx,
                    id_number=number,
                    name=name,
                    employer=employer,
                    employer_kind=kind,
                    monthly_income_fen=income,
                    region_code=fund.spec.prefix,
                )
            fund.guarantors.append(guarantor_id)

        for _ in range(fund.spec.guarantors):
            gender: Gender = "female" if self.replay.rng.random() < 0.45 else "male"
            birth = self.birth((32, 55))
            employer, kind = self.replay.rng.choice(fund.spec.employers)
            step = partial(
                register,
                name=self.name(gender, birth),
                number=self.resident_id(self.replay.rng.choice(fund.spec.urban), birth, gender),
                employer=employer,
                kind=kind,
                income=self.replay.rng.randrange(5_200, 12_800, 100) * 100,
            )
            self.replay.at(self.wd(self.ago(self.replay.rng.randint(705, 725))), step, rank=0)

    def plan_registration(self, holder: Holder, applied: date) -> None:
        """Register the holder at the window a few days before it first applies."""
        if holder.registration_planned:
            return
        holder.registration_planned = True
        day = self.wd(applied - timedelta(days=self.replay.rng.randint(0, 6)))
        if holder.certificate_issued is not None and day.year != applied.year:
            # The certificate is inspected for the year of registration, which must be the year applied.
            day = applied
        self.replay.at(min(day, applied), partial(self.replay.register, holder), rank=0)

    def new_case(self, holder: Holder, applied: date, decided: date, term: int) -> Case:
        policy = self.replay.funds[holder.fund].policy
        if holder.kind == "enterprise":
            amount = (
                policy.money("small_firm_cap")
                * self.replay.rng.choice((1, 2, 3, 4))
                // 10
                // 1_000_000
                * 1_000_000
            )
            purpose, jobs = "扩大生产、吸纳就业", holder.new_hires
        else:
            percent = self.replay.rng.choices((20, 25, 30, 40, 50, 60, 75, 100), (2, 4, 5, 6, 7, 4, 3, 3))[0]
            amount = policy.money("individual_cap") * percent // 100
            purpose = self.replay.rng.choice(_CATEGORY_PROFILES[holder.categories[0]][4])
            jobs = self.replay.rng.randint(1, 5 if "graduate" in holder.categories else 3)
        case = Case(holder, self.pick_bank(holder, applied, decided), amount, term, purpose, jobs)
        if self.replay.rng.random() < 0.12:
            case.principal_fen = amount - min(amount // 5, parse_yuan("10000"))  # the bank lends a bit less
        return case

    def plan_application_only(self, holder: Holder, outcome: str) -> None:
        """An application that ends submitted, approved, rejected, withdrawn or lapsed."""
        rng, first = self.replay.rng, self.ago(FIRST_APPLICATION)
        later: list[tuple[int, str]]
        if outcome == "submitted":
            applied, later = self.ago(rng.randint(0, 6)), []
        elif outcome == "approved":
            applied, later = self.ago(rng.randint(5, 16)), [(rng.randint(1, 3), "approve")]
        elif outcome == "rejected_fund":
            applied, later = self.between(first, self.ago(12)), [(rng.randint(2, 8), "reject")]
        elif outcome == "rejected_bank":
            applied = self.between(first, self.ago(40))
            later = [(rng.randint(1, 4), "approve"), (rng.randint(3, 14), "bank_reject")]
        elif outcome == "withdrawn":
            applied = self.between(first, self.ago(20))
            if rng.random() < 0.35:
                later = [(rng.randint(1, 4), "approve"), (rng.randint(2, 10), "withdraw")]
            else:
                later = [(rng.randint(1, 6), "withdraw")]
        elif outcome == "lapsed":
            applied, later = self.between(first, self.ago(45)), [(rng.randint(1, 4), "approve")]
        else:
            raise AssertionError(outcome)
        applied = self.wd(applied)
        dated, day = [], applied
        for delay, what in later:
            day = self.wd(day + timedelta(days=delay))
            dated.append((day, what))
        case = self.new_case(
            holder, applied, dated[0][0] if dated else applied, self.replay.term(holder, 12, 24, 36)
        )
        self.plan_registration(holder, applied)
        self.replay.at(applied, partial(self.replay.submit, case))
        for day, what in dated:
            step: Step = {
                "approve": partial(self.replay.approve, case),
                "reject": partial(self.replay.reject, case, by_bank=False),
                "bank_reject": partial(self.replay.reject, case, by_bank=True),
                "withdraw": partial(self.replay.withdraw, case),
            }[what]
            self.replay.at(day, step)

    def disbursement_day(self, fate: str, holder: Holder, earliest: date) -> tuple[date, int]:
        """When a loan of this fate is disbursed, and for how many months."""
        today = self.replay.today
        if fate == "repaid":  # repaid at maturity, before today
            term = self.replay.term(holder, 6, 9, 12, 12, 12, 18)
            return self.between(earliest, add_months(today, -term) - timedelta(days=5)), term
        if fate == "repaid_early":
            return self.between(earliest, self.ago(150)), self.replay.term(holder, 12, 24, 24, 36)
        if fate in ("overdue_maturity", "extended"):  # matures in the past year
            term = self.replay.term(holder, 12, 12, 18)
            oldest = self.ago(240 if fate == "overdue_maturity" else 300)
            maturity = self.between(max(oldest, add_months(earliest, term) + timedelta(days=3)), self.ago(5))
            return add_months(maturity, -term), term
        if fate in ("overdue_missed", "cured"):
            latest = self.ago(350 if fate == "cured" else 240)
            return self.between(earliest, latest), self.replay.term(holder, 24, 36)
        term = self.replay.term(holder, 12, 24, 24, 36, 36)  # active
        return self.between(max(earliest, add_months(today, -term) + timedelta(days=10)), self.ago(1)), term

    def plan_loan(self, holder: Holder, fate: str, *, after: date | None = None) -> date | None:
        """An application that becomes a loan with the given fate; returns the day it is repaid, if it is.

        Fates: repaid (in parts, then in full at maturity), repaid_early, overdue_maturity (matured
        unpaid), overdue_missed (a missed instalment reported), cured (missed, then paid), extended, active.
        """
        rng, today = self.replay.rng, self.replay.today
        earliest = self.ago(FIRST_APPLICATION - 20) if after is None else after + timedelta(days=20)
        disbursed, term = self.disbursement_day(fate, holder, earliest)
        approved = disbursed - timedelta(days=rng.randint(2, 12))
        applied = self.wd(approved - timedelta(days=rng.randint(1, 5)))
        approved, disbursed = self.wd(approved), self.wd(disbursed)
        case = self.new_case(holder, applied, approved, term)
        if fate in ("repaid", "repaid_early", "overdue_missed", "cured"):
            case.style = (
                "instalments" if fate != "repaid" or term > 12 or rng.random() < 0.7 else "at_maturity"
            )
        elif fate == "extended":
            case.style = "quarterly"
        else:
            style = rng.choices(("quarterly", "instalments", "at_maturity"), (25, 45, 30))[0]
            case.style = "instalments" if style == "at_maturity" and term > 12 else style
        months, regular = _STYLES[case.style]
        maturity = add_months(disbursed, term)
        all_due = _due_days(disbursed, maturity, months)
        due = [q for q in all_due if q <= today]
        if regular == "part":
            # Equal parts in whole hundreds of yuan; the rest at maturity.
            case.part_fen = (case.principal_fen or case.amount_fen) // (len(all_due) + 1) // 10_000 * 10_000

        self.plan_registration(holder, applied)
        self.replay.at(applied, partial(self.replay.submit, case))
        self.replay.at(approved, partial(self.replay.approve, case))
        self.replay.at(disbursed, partial(self.replay.disburse, case))

        def pay(day: date, mode: str = regular) -> None:
            self.replay.at(self.wd(day), partial(self.replay.pay, case, mode=mode))

        if fate == "repaid":
            for q in due:
                pay(q)
            pay(maturity, "all")
            return self.wd(maturity)
        if fate == "repaid_early":
            payoff = self.between(
                disbursed + timedelta(days=100), min(maturity - timedelta(days=10), self.ago(1))
            )
            for q in due:
                if q < payoff:
                    pay(q)
            pay(payoff, "all")
            return self.wd(payoff)
        if fate == "overdue_maturity":
            for q in due[: -rng.choice((1, 2))]:
                pay(q)
            return None
        if fate == "extended":
            more = 6 if add_months(maturity, 6) > self.ago(-10) and rng.random() < 0.5 else 12
            asked = self.wd(maturity - timedelta(days=rng.randint(3, 15)))
            for q in due:
                if q < asked:
                    pay(q)
            extended_to = add_months(maturity, more)
            self.replay.at(asked, partial(self.replay.extend, case, new_maturity=extended_to))
            for q in _due_days(asked, extended_to, months):
                if q <= today:
                    pay(q)
            return None
        if fate in ("overdue_missed", "cured"):
            oldest, latest = (300, 40) if fate == "cured" else (190, 8)
            candidates = [q for q in due if self.ago(oldest) <= q <= self.ago(latest)]
            candidates = [q for q in candidates if q > disbursed + timedelta(days=45)]
            if candidates:
                missed = candidates[-1]
                reported = self.wd(missed + timedelta(days=rng.randint(3, 7)))
                for q in due:
                    if q < missed:
                        pay(q)
                self.replay.at(
                    reported, partial(self.replay.report_missed, case, since=missed + timedelta(days=1))
                )
                if fate == "cured":
                    cured = self.wd(reported + timedelta(days=rng.randint(8, 20)))
                    pay(cured, "part")
                    for q in due:
                        if q > cured:
                            pay(q)
                return None
        for q in due:  # active
            pay(q)
        return None

    def plan_people(self) -> None:
        rng = self.replay.rng
        outcomes = [outcome for outcome, count in _OUTCOMES.items() for _ in range(count)]
        outcomes += ["loan_active"] * (sum(spec.borrowers for spec in CITIES) - len(outcomes))
        rng.shuffle(outcomes)
        drawn = iter(outcomes)
        for spec in CITIES:
            fund = self.replay.funds[spec.code]
            self.plan_guarantors(fund)
            repeat = fund.policy.optional_integer("repeat_support_max")
            for _ in range(spec.borrowers):
                holder = self.person(fund)
                outcome = next(drawn)
                if not outcome.startswith("loan_"):
                    self.plan_application_only(holder, outcome)
                    continue
                repaid = self.plan_loan(holder, outcome.removeprefix("loan_"))
                # Second support (二次扶持) for some who repaid, where the edition allows it.
                if (
                    repaid is not None
                    and (repeat is None or repeat >= 2)
                    and holder.certificate_issued is None
                    and repaid < self.ago(120)
                    and rng.random() < 0.3
                ):
                    self.plan_loan(holder, "active", after=repaid)
            for number in range(len(FIRM_BANKS[spec.code])):
                self.plan_loan(self.firm(fund), "repaid" if number == 1 else "active")
        # Who the near-limit bank lends to on the last day: a firm first, then individuals.
        fund = self.replay.funds[NEAR_LIMIT[0]]
        self.replay.top_up_pool = [self.firm(fund, staff=(70, 95))] + [
            self.person(fund, "registered_unemployed") for _ in range(8)
        ]
        for holder in self.replay.top_up_pool:
            holder.registration_planned = True
            holder.syb_trained = holder.kind == "individual"
            self.replay.at(
                self.wd(self.ago(rng.randint(1, 12))), partial(self.replay.register, holder), rank=0
            )
        self.replay.at(self.replay.today, self.replay.top_up, rank=9)
