"""`loanfund demo`: a realistic demo province (黑龙江, region 23) in an empty database.

Three city funds on different policy editions (哈尔滨 HRB cn-2020, 齐齐哈尔 QQHR cn-2016, 牡丹江 MDJ
cn-2008) with the province's allocations, local matching in every state (met, pending, overdue), other
money sources and a subsidy budget; two to four partner banks per fund at different multiples and
deposits (one bank lent up to its limit, one comfortably low, one agreement suspended); about three
hundred borrowers — individuals of every category their fund's edition admits, a few small firms —
with their guarantors; and two years of lending: applications in every status (submitted, approved,
disbursed, rejected, withdrawn, lapsed) and loans active, overdue, extended and repaid.

The history is replayed in date order through the library's services, so the ledger, the memo
accounts, the audit log and the events are what the API would have produced, with the fund manager
approving what the windows submitted (maker-checker) and each bank recording its own loans. Each
simulated day runs with the business date pinned to it for this task only
(`loanfund.clock.pinned_business_date`), because the services judge "not in the future", reservations
and lapses by the business date. The reservation-lapse job runs as the scheduler would, on the days it
has something to do. The near-limit bank takes the last loans of today, sized from its headroom.
Every choice comes from `random.Random(2026)` and every date is relative to today, so the demo is the
same on every run (up to server-made ids) and always looks current.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loanfund import banks, clients
from loanfund import policy as policies
from loanfund.agreements import reservations
from loanfund.agreements import service as agreement_service
from loanfund.agreements.capacity import agreement_status, pair_capacity
from loanfund.agreements.queries import list_agreements
from loanfund.applications import queries as application_queries
from loanfund.applications import service as application_service
from loanfund.audit import Actor
from loanfund.borrowers import queries as borrower_queries
from loanfund.borrowers import service as borrower_service
from loanfund.borrowers.queries import Certificate
from loanfund.clock import business_date, pinned_business_date
from loanfund.db.tables import borrowers, funds, guarantors
from loanfund.eligibility.service import ApplicationRequest, GuaranteeRequest
from loanfund.errors import GuarantorLimitExceeded, InvalidState, LeverageExceeded
from loanfund.funds import service as fund_service
from loanfund.guarantors import queries as guarantor_queries
from loanfund.guarantors import service as guarantor_service
from loanfund.identity import Gender, is_4050
from loanfund.loans import queries as loan_queries
from loanfund.loans import service as loan_service
from loanfund.money import fen_to_decimal, format_pct, parse_yuan, round_to_fen
from loanfund.policy import Policy
from loanfund.rates.reference import RateTable
from loanfund.rates.store import rate_table
from loanfund.terms import add_months

SEED = 2026
DEMO = Actor(client_id=None, request_id="demo")
LAPSE_JOB = Actor.system("lapse_reservations")

FIRST_APPLICATION = 700  # no application earlier than this many days before today
NEAR_LIMIT = ("HRB", "HRBB")  # the pair lent up to ~98.5% of its capacity at the end
NEAR_LIMIT_TARGET = Decimal("0.985")

BANKS = [
    ("ICBC-HLJ", "中国工商银行黑龙江省分行"),
    ("ABC-HLJ", "中国农业银行黑龙江省分行"),
    ("PSBC-HLJ", "中国邮政储蓄银行黑龙江省分行"),
    ("HRBB", "哈尔滨银行"),
]


@dataclass(frozen=True)
class _CitySpec:
    code: str
    name: str
    region: str
    edition: str
    overrides: dict[str, Any]
    scale: int  # money in, relative
    city: str
    prefix: str  # the city's window scope and borrowers' registering region
    urban: tuple[str, ...]  # district codes (GB/T 2260) for ID numbers
    rural: tuple[str, ...]
    employers: tuple[tuple[str, str], ...]  # guarantors' employers: (name, employer_kind)
    borrowers: int  # ordinary individual borrowers
    guarantors: int


CITIES = [
    _CitySpec(
        "HRB",
        "哈尔滨市创业担保贷款基金",
        "230100",
        "cn-2020",
        {"rate_tier_default": 2},
        3,
        "哈尔滨市",
        "2301",
        ("230102", "230103", "230104", "230108", "230109", "230110", "230111", "230112"),
        ("230113", "230123", "230124", "230125", "230183", "230184"),
        (
            ("哈尔滨市道里区人力资源和社会保障局", "civil_service"),
            ("哈尔滨市南岗区教育局", "civil_service"),
            ("哈尔滨市松北区市场监督管理局", "civil_service"),
            ("哈尔滨市香坊区人民法院", "civil_service"),
            ("哈尔滨市第三中学校", "public_institution"),
            ("哈尔滨医科大学附属第一医院", "public_institution"),
            ("黑龙江大学", "public_institution"),
            ("哈尔滨市道外区疾病预防控制中心", "public_institution"),
        ),
        132,
        26,
    ),
    _CitySpec(
        "QQHR",
        "齐齐哈尔市创业担保贷款基金",
        "230200",
        "cn-2016",
        {},
        2,
        "齐齐哈尔市",
        "2302",
        ("230202", "230203", "230204", "230205", "230206", "230208"),
        ("230221", "230223", "230281"),
        (
            ("齐齐哈尔市龙沙区人民政府办公室", "civil_service"),
            ("齐齐哈尔市建华区财政局", "civil_service"),
            ("齐齐哈尔市铁锋区税务局", "civil_service"),
            ("齐齐哈尔市第一医院", "public_institution"),
            ("齐齐哈尔大学", "public_institution"),
            ("齐齐哈尔市实验中学", "public_institution"),
        ),
        96,
        18,
    ),
    _CitySpec(
        "MDJ",
        "牡丹江市小额担保贷款基金",
        "231000",
        "cn-2008",
        {},
        1,
        "牡丹江市",
        "2310",
        ("231002", "231003", "231004", "231005"),
        ("231025", "231081", "231083", "231084", "231085", "231086"),
        (
            ("牡丹江市阳明区市场监督管理局", "civil_service"),
            ("牡丹江市爱民区人民政府", "civil_service"),
            ("牡丹江医学院附属红旗医院", "public_institution"),
            ("牡丹江师范学院", "public_institution"),
            ("牡丹江市第一高级中学", "public_institution"),
        ),
        64,
        14,
    ),
]


@dataclass(frozen=True)
class _AgreementSpec:
    fund: str
    bank: str
    multiple: int
    fund_share_pct: int
    claim_after_days: int
    covers_interest: bool
    start: int  # days before today
    deposits: tuple[tuple[int, str], ...]  # (days before today, yuan)
    weight: int  # share of the fund's applications sent to this bank
    withdrawal: tuple[int, str] | None = None
    suspension: tuple[int, str] | None = None


AGREEMENTS = [
    _AgreementSpec("HRB", "ICBC-HLJ", 8, 80, 90, True, 730, ((725, "1200000"), (380, "400000")), 45),
    _AgreementSpec("HRB", "HRBB", 10, 80, 90, True, 710, ((705, "300000"),), 20),
    _AgreementSpec(
        "HRB", "ABC-HLJ", 6, 70, 90, False, 730, ((724, "3000000"),), 20, withdrawal=(100, "500000")
    ),
    _AgreementSpec(
        "HRB",
        "PSBC-HLJ",
        5,
        80,
        120,
        True,
        730,
        ((720, "700000"),),
        15,
        suspension=(
            45,
            "专户存款季度对账存在差异，核实前暂停新增担保"
            " (the quarterly reconciliation of the special account failed)",
        ),
    ),
    _AgreementSpec("QQHR", "ABC-HLJ", 5, 80, 90, True, 730, ((722, "1500000"),), 40),
    _AgreementSpec("QQHR", "PSBC-HLJ", 8, 80, 90, True, 730, ((718, "1000000"),), 35),
    _AgreementSpec("QQHR", "ICBC-HLJ", 6, 75, 90, True, 520, ((515, "800000"),), 25),
    _AgreementSpec("MDJ", "PSBC-HLJ", 5, 80, 90, True, 730, ((721, "800000"),), 65),
    _AgreementSpec("MDJ", "ABC-HLJ", 4, 80, 90, True, 730, ((719, "400000"),), 35),
]

# ---- identity numbers ----------------------------------------------------------------------------

_RIC_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # GB 11643: 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714 organisation code


def resident_id_check(body: str) -> str:
    """The GB 11643 check character (ISO 7064 MOD 11-2) of the first 17 digits of a resident ID."""
    total = sum(int(char) * weight for char, weight in zip(body, _RIC_WEIGHTS, strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def organisation_code_check(body: str) -> str:
    """The GB 11714 check character of an 8-character organisation code."""
    total = sum(int(char, 36) * weight for char, weight in zip(body, _ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def uscc_check(body: str) -> str:
    """The GB 32100 check character of the first 17 characters of a unified social credit code."""
    total = sum(_USCC_ALPHABET.index(char) * w for char, w in zip(body, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


# ---- names, purposes, reasons ----------------------------------------------------------------------

_SURNAMES = (
    "王李张刘赵杨孙于高马"  # the ten most common, six times as likely
    "徐陈姜曲宋郭吴韩周朱"  # then these, three times
    "冯孟崔付邵董丛隋栾迟佟关吕范鲁贾白齐尹丁郑何林田潘姚石苏谭任袁侯程谢万薛蔡夏史顾闫段雷葛"
)
_SURNAME_WEIGHTS = tuple(6 if i < 10 else 3 if i < 20 else 1 for i in range(len(_SURNAMES)))


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_GIVEN = {  # (gender, born 1985 or earlier) → given names of that generation
    ("male", True): _words(
        "建国 建军 国强 志刚 志强 海涛 春雷 立新 永刚 振华 德明 长青 宏伟 玉林"
        " 庆丰 文斌 金龙 洪波 伟 军 勇 刚 斌 涛 明 辉 东 峰"
    ),
    ("female", True): _words(
        "淑芬 淑华 桂兰 桂芝 玉兰 秀英 秀云 凤霞 丽华 春梅 红梅 晓燕 艳华"
        " 雅琴 丽娟 美玲 丽 艳 红 霞 萍 静 敏 芳 娟"
    ),
    ("male", False): _words("浩然 子轩 宇航 一鸣 博文 天宇 俊杰 思远 嘉豪 明轩 鑫 磊 鹏 超 帅 宇 琦 晨 昊"),
    ("female", False): _words("欣怡 雨桐 梓涵 思雨 佳琪 诗涵 若曦 雪 婷 婧 琳 璐 悦 佳 晶 倩 楠 雯 妍"),
}
_PHONE_PREFIXES = _words("130 131 132 133 135 136 137 138 139 150 151 152 155 157 158 159 180 186 187 189")

# Category: (weight, ages at today, share female, rural district, purposes)
_CATEGORY_PROFILES: dict[str, tuple[int, tuple[int, int], float, bool, tuple[str, ...]]] = {
    "laid_off": (
        16,
        (41, 57),
        0.55,
        False,
        ("开办早餐店", "经营社区便利店", "开办家政服务部", "经营冷面馆", "汽车维修"),
    ),
    "registered_unemployed": (
        18,
        (24, 50),
        0.5,
        False,
        ("开办快递驿站", "经营水果店", "美容美发", "开办烧烤店", "服装零售", "五金建材经营"),
    ),
    "hard_to_employ": (8, (44, 57), 0.55, False, ("开办裁缝铺", "经营粮油店", "开办托管班", "修鞋配钥匙")),
    "bankrupt_soe_staff": (
        6,
        (42, 57),
        0.45,
        False,
        ("机加工作坊", "开办东北菜馆", "电气焊加工", "经营建材店"),
    ),
    "veteran": (10, (24, 40), 0.12, False, ("物流运输", "开办健身工作室", "安防设备安装", "汽车美容")),
    "graduate": (
        16,
        (22, 28),
        0.5,
        False,
        ("电商网店（五常大米）", "设计工作室", "开办书店咖啡馆", "摄影工作室", "编程培训"),
    ),
    "returning_migrant": (
        12,
        (27, 48),
        0.35,
        True,
        ("种植黑木耳", "肉牛养殖", "农机维修", "开办农家乐", "蓝莓种植"),
    ),
    "rural_entrepreneur": (8, (26, 52), 0.35, True, ("水稻种植合作", "生猪养殖", "大棚蔬菜", "粮食烘干")),
    "disabled": (3, (26, 55), 0.45, False, ("盲人按摩店", "开办网络客服工作室", "手工编织")),
    "poverty_registered": (4, (26, 55), 0.45, True, ("庭院养殖", "山野菜加工", "中药材种植")),
}
_COLLATERAL = (
    "自有住房抵押（建筑面积78平方米）",
    "营运车辆抵押（江淮轻型货车）",
    "商铺租赁权及经营设备抵押",
    "农机具抵押（拖拉机一台）",
    "定期存单质押",
)
_FUND_REJECTIONS = (
    "征信报告显示有未结清的逾期贷款",
    "经营项目不属于扶持范围",
    "申报材料与实际经营地址不符",
    "创业计划书不完整，请补充后重新申请",
)
_BANK_REJECTIONS = ("银行审贷会未通过：经营现金流不足", "借款人未能按约补充还款来源证明")
_WITHDRAWALS = ("借款人放弃创业计划", "借款人已通过家庭筹得资金", "借款人外出务工，暂不申请")
_FIRM_BRANDS = (
    "鑫达",
    "宏图",
    "北疆",
    "龙江",
    "冰城",
    "兴农",
    "瑞丰",
    "恒通",
    "嘉禾",
    "金穗",
    "绿源",
    "雪乡",
)
_FIRM_TRADES = (
    "食品加工",
    "农业科技",
    "服装制造",
    "物流",
    "餐饮管理",
    "家政服务",
    "木制品",
    "米业",
    "电子商务",
)

# Outcomes of the ordinary individual borrowers' applications, by number.
_OUTCOMES = {
    "submitted": 8,
    "approved": 8,
    "rejected_fund": 12,
    "rejected_bank": 5,
    "withdrawn": 9,
    "lapsed": 8,
    "loan_repaid": 42,
    "loan_repaid_early": 24,
    "loan_overdue_maturity": 12,
    "loan_overdue_missed": 8,
    "loan_cured": 3,
    "loan_extended": 8,
}  # the rest: an active loan

# ---- the simulation ----------------------------------------------------------------------------------

Step = Callable[[date], Awaitable[None]]
FIRM_BANKS = {"HRB": ("ICBC-HLJ", "ABC-HLJ"), "QQHR": ("ABC-HLJ", "PSBC-HLJ"), "MDJ": ("PSBC-HLJ",)}


@dataclass(order=True)
class _Event:
    day: date
    rank: int  # 0 setup and registrations, 1 lending, 9 the near-limit bank's last lending
    seq: int
    step: Step = field(compare=False)


@dataclass
class _Holder:
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
class _Case:
    """One application and, once disbursed, its loan."""

    holder: _Holder
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
class _Fund:
    spec: _CitySpec
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


class _Demo:
    """Plans the province's history as dated steps, then replays them in date order."""

    def __init__(self, conn: AsyncConnection, today: date, actors: dict[str, Actor]) -> None:
        self.conn = conn
        self.today = today
        self.rng = random.Random(SEED)
        self.actors = actors
        self.manager = actors["fund_manager"]
        self.queue: list[_Event] = []
        self.seq = 0
        self.funds: dict[str, _Fund] = {}
        self.taken: set[str] = set()
        self.loan_numbers: Counter[str] = Counter()
        self.pending: Counter[str] = Counter()  # guarantor → applications submitted, not yet decided
        self.rates: RateTable | None = None
        self.top_up_pool: list[_Holder] = []
        self.refused: Counter[str] = Counter()
        self.expiring: dict[str, date] = {}  # application → last day of its unconverted reservation

    # -- scheduling ------------------------------------------------------------------------------

    def ago(self, days: int) -> date:
        return self.today - timedelta(days=days)

    def wd(self, day: date) -> date:
        return _workday(day, self.today)

    def between(self, first: date, last: date) -> date:
        if last <= first:
            return first
        return first + timedelta(days=self.rng.randint(0, (last - first).days))

    def at(self, day: date, step: Step, rank: int = 1) -> None:
        if day > self.today:
            raise AssertionError(f"a demo step planned after today: {day}")
        self.seq += 1
        heapq.heappush(self.queue, _Event(day, rank, self.seq, step))

    async def run(self) -> None:
        current: date | None = None
        while self.queue:
            event = heapq.heappop(self.queue)
            with pinned_business_date(event.day):
                if event.day != current:
                    current = event.day
                    # The scheduler's daily lapse job, on the days it has something to do.
                    if any(last < current for last in self.expiring.values()):
                        await reservations.lapse_expired(self.conn, LAPSE_JOB, today=current)
                        self.expiring = {app: last for app, last in self.expiring.items() if last >= current}
                await event.step(event.day)

    # -- funds, banks, agreements ------------------------------------------------------------------

    def plan_funds(self) -> None:
        for spec in CITIES:
            self.plan_money_in(spec)
        for agreement in AGREEMENTS:
            self.plan_agreement(agreement)

    def plan_money_in(self, spec: _CitySpec) -> None:
        """Allocations with matching met, overdue and pending; central money, interest, a subsidy budget."""
        conn, manager, code = self.conn, self.manager, spec.code
        allocation_ids: dict[str, str] = {}

        def fen(text: str) -> int:
            return parse_yuan(text) * spec.scale

        # Positional, the day last: the plan below binds everything but the day.
        async def allocation(key: str, amount: str, ratio: str, due: date, reference: str, day: date) -> None:
            allocation_ids[key] = await fund_service.record_allocation(
                conn,
                manager,
                fund_code=code,
                amount_fen=fen(amount),
                received_on=day,
                reference=reference,
                match_ratio_pct=Decimal(ratio),
                match_due_on=due,
            )

        async def contribution(source: str, amount: str, reference: str, key: str, day: date) -> None:
            await fund_service.record_contribution(
                conn,
                manager,
                fund_code=code,
                source=source,
                amount_fen=fen(amount),
                received_on=day,
                reference=f"{reference} {code}-{day.year}",
                allocation_id=allocation_ids[key] if key else None,
            )

        async def subsidy(day: date) -> None:
            await fund_service.add_subsidy_budget(
                conn,
                manager,
                fund_code=code,
                amount_fen=fen("800000"),
                received_on=day,
                reference=f"{code}-S",
            )

        def doc(days: int) -> str:
            return f"黑财金[{self.ago(days).year}]{self.rng.randint(10, 99)}号 {code}"

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
            self.at(self.wd(self.ago(days)), step, rank=0)

    def plan_agreement(self, spec: _AgreementSpec) -> None:
        conn, manager, fund = self.conn, self.manager, spec.fund

        def agreement_id() -> str:
            return self.funds[fund].agreements[spec.bank]

        async def create(day: date) -> None:
            self.funds[fund].agreements[spec.bank] = await agreement_service.create_agreement(
                conn,
                manager,
                fund_code=fund,
                bank_code=spec.bank,
                leverage_multiple=Decimal(spec.multiple),
                fund_loss_share_pct=Decimal(spec.fund_share_pct),
                claim_after_days=spec.claim_after_days,
                claim_covers_interest=spec.covers_interest,
                effective_from=day,
            )

        async def deposit(day: date, amount: str, number: int) -> None:
            await agreement_service.deposit(
                conn,
                manager,
                agreement_id(),
                amount_fen=parse_yuan(amount),
                deposited_on=day,
                reference=f"{fund}-{spec.bank}-D{number}",
            )

        async def withdraw(day: date, amount: str) -> None:
            await agreement_service.withdraw(
                conn,
                manager,
                agreement_id(),
                amount_fen=parse_yuan(amount),
                withdrawn_on=day,
                reference=f"{fund}-{spec.bank}-W1 调回财政专户",
            )

        async def suspend(day: date, reason: str) -> None:
            await agreement_service.suspend(conn, manager, agreement_id(), reason=reason)

        self.at(self.wd(self.ago(spec.start)), create, rank=0)
        for number, (days, amount) in enumerate(spec.deposits, start=1):
            self.at(self.wd(self.ago(days)), partial(deposit, amount=amount, number=number), rank=0)
        if spec.withdrawal is not None:
            self.at(
                self.wd(self.ago(spec.withdrawal[0])), partial(withdraw, amount=spec.withdrawal[1]), rank=0
            )
        if spec.suspension is not None:
            self.at(
                self.wd(self.ago(spec.suspension[0])), partial(suspend, reason=spec.suspension[1]), rank=0
            )

    def pick_bank(self, holder: _Holder, applied: date, decided: date) -> str:
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
        return self.rng.choices([s.bank for s in options], [s.weight for s in options])[0]

    # -- people ------------------------------------------------------------------------------------

    def name(self, gender: Gender, birth: date) -> str:
        surname = self.rng.choices(_SURNAMES, _SURNAME_WEIGHTS)[0]
        return surname + self.rng.choice(_GIVEN[(gender, birth.year <= 1985)])

    def birth(self, ages: tuple[int, int]) -> date:
        """A birth date of someone aged within `ages` (completed years) today."""
        age = self.rng.randint(*ages)
        birthday = date(self.today.year - age, self.today.month, min(self.today.day, 28))
        return birthday - timedelta(days=self.rng.randint(0, 360))

    def resident_id(self, district: str, birth: date, gender: Gender) -> str:
        while True:
            odd = self.rng.choice("13579" if gender == "male" else "02468")
            body = f"{district}{birth:%Y%m%d}{self.rng.randint(1, 99):02d}{odd}"
            number = body + resident_id_check(body)
            if number not in self.taken:
                self.taken.add(number)
                return number

    def person(self, fund: _Fund, category: str | None = None) -> _Holder:
        admitted = fund.policy.categories()
        if category is None:
            choices = [c for c in _CATEGORY_PROFILES if c in admitted]
            category = self.rng.choices(choices, [_CATEGORY_PROFILES[c][0] for c in choices])[0]
        _, ages, female_share, rural, _ = _CATEGORY_PROFILES[category]
        gender: Gender = "female" if self.rng.random() < female_share else "male"
        birth = self.birth(ages)
        district = self.rng.choice(fund.spec.rural if rural else fund.spec.urban)
        categories = [category]
        older = is_4050(birth, gender, self.today)
        if category in ("laid_off", "bankrupt_soe_staff") and older and self.rng.random() < 0.3:
            categories.append("hard_to_employ")
        if category == "veteran" and self.rng.random() < 0.15:
            categories.append("registered_unemployed")
        issued = None
        if category == "laid_off":
            year = self.today.year - self.rng.randint(4, 14)
            issued = date(year, self.rng.randint(1, 12), self.rng.randint(1, 28))
        return _Holder(
            fund=fund.spec.code,
            name=self.name(gender, birth),
            number=self.resident_id(district, birth, gender),
            kind="individual",
            birth=birth,
            gender=gender,
            district=district,
            categories=tuple(c for c in categories if c in admitted),
            certificate_issued=issued,
            credit_community=self.rng.random() < 0.12,
            syb_trained=self.rng.random() < {"graduate": 0.5, "returning_migrant": 0.4}.get(category, 0.15),
            phone=self.rng.choice(_PHONE_PREFIXES) + f"{self.rng.randint(0, 99_999_999):08d}",
        )

    def firm(self, fund: _Fund, staff: tuple[int, int] = (18, 90)) -> _Holder:
        district = self.rng.choice(fund.spec.urban + fund.spec.rural)
        while True:
            organisation = f"{self.rng.randint(10_000_000, 99_999_999)}"
            body = f"91{district}{organisation}{organisation_code_check(organisation)}"
            number = body + uscc_check(body)
            if number not in self.taken:
                self.taken.add(number)
                break
        staff_count = self.rng.randint(*staff)
        needed = math.ceil(staff_count * policies.firm_new_hire_share_pct(fund.policy, staff_count) / 100)
        return _Holder(
            fund=fund.spec.code,
            name=f"{fund.spec.city}{self.rng.choice(_FIRM_BRANDS)}{self.rng.choice(_FIRM_TRADES)}有限公司",
            number=number,
            kind="enterprise",
            district=district,
            categories=("small_firm",),
            staff=staff_count,
            new_hires=min(staff_count, needed + self.rng.randint(0, 4)),
        )

    def plan_guarantors(self, fund: _Fund) -> None:
        """Civil servants and public staff of the city, registered before the lending starts."""

        async def register(day: date, name: str, number: str, employer: str, kind: str, income: int) -> None:
            guarantor_id = await guarantor_service.register(
                self.conn,
                fund.window,
                id_number=number,
                name=name,
                employer=employer,
                employer_kind=kind,
                monthly_income_fen=income,
                region_code=fund.spec.prefix,
                today=day,
            )
            fund.guarantors.append(guarantor_id)

        for _ in range(fund.spec.guarantors):
            gender: Gender = "female" if self.rng.random() < 0.45 else "male"
            birth = self.birth((32, 55))
            employer, kind = self.rng.choice(fund.spec.employers)
            step = partial(
                register,
                name=self.name(gender, birth),
                number=self.resident_id(self.rng.choice(fund.spec.urban), birth, gender),
                employer=employer,
                kind=kind,
                income=self.rng.randrange(5_200, 12_800, 100) * 100,
            )
            self.at(self.wd(self.ago(self.rng.randint(705, 725))), step, rank=0)

    # -- registration and the application ----------------------------------------------------------

    def plan_registration(self, holder: _Holder, applied: date) -> None:
        """Register the holder at the window a few days before it first applies."""
        if holder.registration_planned:
            return
        holder.registration_planned = True
        day = self.wd(applied - timedelta(days=self.rng.randint(0, 6)))
        if holder.certificate_issued is not None and day.year != applied.year:
            # The certificate is inspected for the year of registration, which must be the year applied.
            day = applied
        self.at(min(day, applied), partial(self.register, holder), rank=0)

    async def register(self, holder: _Holder, day: date) -> None:
        fund = self.funds[holder.fund]
        if holder.kind == "enterprise":
            holder.borrower_id = await borrower_service.register_enterprise(
                self.conn,
                fund.window,
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
        holder.borrower_id = await borrower_service.register_individual(
            self.conn,
            fund.window,
            id_number=holder.number,
            name=holder.name,
            phone=holder.phone,
            categories=holder.categories,
            certificates=certificates,
            credit_community=holder.credit_community,
            syb_trained=holder.syb_trained,
            region_code=fund.spec.prefix,
            today=day,
            # The facts eligibility asks for (issue 9): a recent graduate, a plan approved with the training.
            graduation_year=day.year - 1 if "graduate" in holder.categories else None,
            syb_plan_approved_on=day if holder.syb_trained else None,
        )
        fund.registered.append(holder.borrower_id)

    async def choose_guarantee(self, case: _Case, fund: _Fund, day: date) -> GuaranteeRequest:
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

    async def submit(self, case: _Case, day: date) -> None:
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
        case.app_id, _ = await application_service.submit(
            self.conn,
            fund.window,
            request,
            borrower=borrower,
            purpose=case.purpose,
            micro_profit=case.holder.kind == "individual",
            jobs_created=case.jobs,
            region_prefix=fund.spec.prefix,
            today=day,
        )
        case.guarantor_ids = guarantee.guarantor_ids
        case.awaiting_decision = True
        self.pending.update(case.guarantor_ids)

    def decided(self, case: _Case) -> None:
        if case.awaiting_decision:
            case.awaiting_decision = False
            self.pending.subtract(case.guarantor_ids)

    async def approve(self, case: _Case, day: date) -> None:
        if not case.alive or case.app_id is None:
            return
        self.decided(case)
        try:  # a refused approval changes nothing (api.md), so the transaction goes on
            app = await application_service.approve(self.conn, self.manager, case.app_id, today=day)
            assert app.guarantee_expires_on is not None
            self.expiring[case.app_id] = app.guarantee_expires_on
        except (LeverageExceeded, GuarantorLimitExceeded) as exc:
            # What a fund office does when the bank is full: refuse, and say where to go instead.
            self.refused[exc.code] += 1
            case.alive = False
            reason = f"合作银行担保额度或反担保人条件不足，请改投其他合作银行 ({exc.code})"
            await application_service.reject(self.conn, self.manager, case.app_id, reason=reason, today=day)

    async def reject(self, case: _Case, day: date, *, by_bank: bool) -> None:
        if not case.alive or case.app_id is None:
            return
        self.decided(case)
        self.expiring.pop(case.app_id, None)
        case.alive = False
        actor = self.actors[f"bank:{case.bank}"] if by_bank else self.manager
        reason = self.rng.choice(_BANK_REJECTIONS if by_bank else _FUND_REJECTIONS)
        await application_service.reject(self.conn, actor, case.app_id, reason=reason, today=day)

    async def withdraw(self, case: _Case, day: date) -> None:
        if not case.alive or case.app_id is None:
            return
        self.decided(case)
        self.expiring.pop(case.app_id, None)
        case.alive = False
        window = self.funds[case.holder.fund].window
        reason = self.rng.choice(_WITHDRAWALS)
        await application_service.withdraw(self.conn, window, case.app_id, reason=reason, today=day)

    # -- the loan ----------------------------------------------------------------------------------

    async def rate_for(self, case: _Case, fund: _Fund, day: date) -> Decimal:
        """What a bank would offer: the reference rate plus a spread, within the policy's ceiling."""
        if self.rates is None:
            self.rates = await rate_table(self.conn)
        reference = self.rates.for_loan(case.term, day).rate_pct
        ceiling = policies.rate_ceiling_pct(fund.policy, reference)
        spread = (ceiling - reference) * self.rng.choice((2, 3, 4, 5, 6)) / 6
        return min(ceiling, reference + spread.quantize(Decimal("0.05"), rounding=ROUND_DOWN))

    async def disburse(self, case: _Case, day: date) -> None:
        if not case.alive or case.app_id is None:
            return
        self.loan_numbers[case.bank] += 1
        case.rate_pct = await self.rate_for(case, self.funds[case.holder.fund], day)
        case.principal_fen = case.principal_fen or case.amount_fen
        case.loan_id = await loan_service.disburse(
            self.conn,
            self.actors[f"bank:{case.bank}"],
            application_id=case.app_id,
            loan_number=f"{case.bank}-{day.year}-{self.loan_numbers[case.bank]:05d}",
            principal_fen=case.principal_fen,
            annual_rate_pct=case.rate_pct,
            disbursed_on=day,
            maturity_on=add_months(day, case.term),
            contracted_on=None,
            today=day,
        )
        self.expiring.pop(case.app_id, None)
        case.outstanding_fen = case.principal_fen
        case.last_paid = day

    async def pay(self, case: _Case, day: date, *, mode: str) -> None:
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
        await loan_service.repay(
            self.conn,
            self.actors[f"bank:{case.bank}"],
            case.loan_id,
            principal_fen=principal[mode],
            interest_fen=interest,
            paid_on=day,
            today=day,
        )
        case.outstanding_fen -= principal[mode]
        case.last_paid = day

    async def report_missed(self, case: _Case, day: date, *, since: date) -> None:
        if case.alive and case.loan_id is not None:
            await loan_service.report_overdue(
                self.conn,
                self.actors[f"bank:{case.bank}"],
                case.loan_id,
                overdue_since=since,
                overdue_principal_fen=min(case.part_fen, case.outstanding_fen),
                today=day,
            )

    async def extend(self, case: _Case, day: date, *, new_maturity: date) -> None:
        if case.alive and case.loan_id is not None:
            await loan_service.extend(
                self.conn,
                self.actors[f"bank:{case.bank}"],
                case.loan_id,
                new_maturity_on=new_maturity,
                guarantor_consent=True,
                today=day,
            )

    # -- planning a case -------------------------------------------------------------------------

    def max_term(self, holder: _Holder) -> int:
        name = "max_term_individual_months" if holder.kind == "individual" else "max_term_firm_months"
        return self.funds[holder.fund].policy.integer(name)

    def term(self, holder: _Holder, *options: int) -> int:
        return self.rng.choice([m for m in options if m <= self.max_term(holder)])

    def new_case(self, holder: _Holder, applied: date, decided: date, term: int) -> _Case:
        policy = self.funds[holder.fund].policy
        if holder.kind == "enterprise":
            amount = (
                policy.money("small_firm_cap") * self.rng.choice((1, 2, 3, 4)) // 10 // 1_000_000 * 1_000_000
            )
            purpose, jobs = "扩大生产、吸纳就业", holder.new_hires
        else:
            percent = self.rng.choices((20, 25, 30, 40, 50, 60, 75, 100), (2, 4, 5, 6, 7, 4, 3, 3))[0]
            amount = policy.money("individual_cap") * percent // 100
            purpose = self.rng.choice(_CATEGORY_PROFILES[holder.categories[0]][4])
            jobs = self.rng.randint(1, 5 if "graduate" in holder.categories else 3)
        case = _Case(holder, self.pick_bank(holder, applied, decided), amount, term, purpose, jobs)
        if self.rng.random() < 0.12:
            case.principal_fen = amount - min(amount // 5, parse_yuan("10000"))  # the bank lends a bit less
        return case

    def plan_application_only(self, holder: _Holder, outcome: str) -> None:
        """An application that ends submitted, approved, rejected, withdrawn or lapsed."""
        rng, first = self.rng, self.ago(FIRST_APPLICATION)
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
            holder, applied, dated[0][0] if dated else applied, self.term(holder, 12, 24, 36)
        )
        self.plan_registration(holder, applied)
        self.at(applied, partial(self.submit, case))
        for day, what in dated:
            step: Step = {
                "approve": partial(self.approve, case),
                "reject": partial(self.reject, case, by_bank=False),
                "bank_reject": partial(self.reject, case, by_bank=True),
                "withdraw": partial(self.withdraw, case),
            }[what]
            self.at(day, step)

    def disbursement_day(self, fate: str, holder: _Holder, earliest: date) -> tuple[date, int]:
        """When a loan of this fate is disbursed, and for how many months."""
        today = self.today
        if fate == "repaid":  # repaid at maturity, before today
            term = self.term(holder, 6, 9, 12, 12, 12, 18)
            return self.between(earliest, add_months(today, -term) - timedelta(days=5)), term
        if fate == "repaid_early":
            return self.between(earliest, self.ago(150)), self.term(holder, 12, 24, 24, 36)
        if fate in ("overdue_maturity", "extended"):  # matures in the past year
            term = self.term(holder, 12, 12, 18)
            oldest = self.ago(240 if fate == "overdue_maturity" else 300)
            maturity = self.between(max(oldest, add_months(earliest, term) + timedelta(days=3)), self.ago(5))
            return add_months(maturity, -term), term
        if fate in ("overdue_missed", "cured"):
            latest = self.ago(350 if fate == "cured" else 240)
            return self.between(earliest, latest), self.term(holder, 24, 36)
        term = self.term(holder, 12, 24, 24, 36, 36)  # active
        return self.between(max(earliest, add_months(today, -term) + timedelta(days=10)), self.ago(1)), term

    def plan_loan(self, holder: _Holder, fate: str, *, after: date | None = None) -> date | None:
        """An application that becomes a loan with the given fate; returns the day it is repaid, if it is.

        Fates: repaid (in parts, then in full at maturity), repaid_early, overdue_maturity (matured
        unpaid), overdue_missed (a missed instalment reported), cured (missed, then paid), extended, active.
        """
        rng, today = self.rng, self.today
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
        self.at(applied, partial(self.submit, case))
        self.at(approved, partial(self.approve, case))
        self.at(disbursed, partial(self.disburse, case))

        def pay(day: date, mode: str = regular) -> None:
            self.at(self.wd(day), partial(self.pay, case, mode=mode))

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
            self.at(asked, partial(self.extend, case, new_maturity=extended_to))
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
                self.at(reported, partial(self.report_missed, case, since=missed + timedelta(days=1)))
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

    # -- the near-limit bank ---------------------------------------------------------------------

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
                case = _Case(holder, bank, amount, 24, "扩大生产、吸纳就业", holder.new_hires)
            else:
                amount = min(policy.money("individual_cap"), gap // 100_000 * 100_000)
                case = _Case(holder, bank, amount, self.term(holder, 24, 36), "开办连锁门店", 2)
            await self.submit(case, day)
            await self.approve(case, day)
            if gap - amount >= parse_yuan("20000"):
                await self.disburse(case, day)

    def plan_people(self) -> None:
        rng = self.rng
        outcomes = [outcome for outcome, count in _OUTCOMES.items() for _ in range(count)]
        outcomes += ["loan_active"] * (sum(spec.borrowers for spec in CITIES) - len(outcomes))
        rng.shuffle(outcomes)
        drawn = iter(outcomes)
        for spec in CITIES:
            fund = self.funds[spec.code]
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
        fund = self.funds[NEAR_LIMIT[0]]
        self.top_up_pool = [self.firm(fund, staff=(70, 95))] + [
            self.person(fund, "registered_unemployed") for _ in range(8)
        ]
        for holder in self.top_up_pool:
            holder.registration_planned = True
            holder.syb_trained = holder.kind == "individual"
            self.at(self.wd(self.ago(rng.randint(1, 12))), partial(self.register, holder), rank=0)
        self.at(self.today, self.top_up, rank=9)


# ---- the summary -----------------------------------------------------------------------------------


async def _summary(conn: AsyncConnection, today: date) -> dict[str, Any]:
    apps = await application_queries.list_applications(conn, today, limit=1_000_000)
    loans = await loan_queries.list_loans(conn, today, limit=1_000_000)
    people = (
        await conn.execute(
            sa.select(borrowers.c.kind, borrowers.c.birth_date, borrowers.c.gender, borrowers.c.categories)
        )
    ).all()
    categories: Counter[str] = Counter()
    for row in people:
        categories.update(row.categories)
    leverage = {}
    rows = await list_agreements(
        conn, fund_code=None, bank_code=None, region_prefix=None, after=None, limit=1000
    )
    for agreement in sorted(rows, key=lambda row: (row.fund_code, row.bank_code)):
        capacity = await pair_capacity(conn, agreement.fund_code, agreement.bank_code, today=today)
        status = agreement_status(agreement, today)
        leverage[f"{agreement.fund_code}/{agreement.bank_code}"] = (
            f"{capacity.leverage_ratio} of {format_pct(agreement.leverage_multiple)}"
            + ("" if status == "active" else f", {status}")
        )
    kinds = Counter(row.kind for row in people)
    return {
        "business_date": today.isoformat(),
        "borrowers": {
            "individual": kinds["individual"],
            "enterprise": kinds["enterprise"],
            "is_4050": sum(
                1 for row in people if row.birth_date and is_4050(row.birth_date, row.gender, today)
            ),
        },
        "categories": dict(sorted(categories.items())),
        "guarantors": await conn.scalar(sa.select(sa.func.count()).select_from(guarantors)),
        "applications": dict(sorted(Counter(app.status for app in apps).items())),
        "loans": {
            **dict(sorted(Counter(loan.status for loan in loans).items())),
            "extended": sum(1 for loan in loans if loan.extension_count),
        },
        "leverage": leverage,
    }


async def fill_demo(engine: AsyncEngine) -> dict[str, object]:
    """Fill an empty database; returns the demo tokens by role (one client each; `more_clients` lists
    the other windows and banks the history was made with) and a `summary`. Refuses a database that has
    funds."""
    today = business_date()
    result: dict[str, object] = {}
    async with engine.begin() as conn:
        if await conn.scalar(sa.select(sa.func.count()).select_from(funds)):
            raise InvalidState("the database already has funds; `loanfund demo` fills an empty one only")
        admin, token = await clients.add_client(conn, DEMO, role="admin", name="演示管理员 demo admin")
        result["admin"] = {"client_id": admin.id, "token": token, "scope": "all"}
        admin_actor = Actor(client_id=admin.id, request_id="demo")
        for code, name in BANKS:
            await banks.create_bank(conn, admin_actor, code=code, name=name)
        actors: dict[str, Actor] = {}
        more: list[dict[str, str]] = []
        demo_clients: list[tuple[str, str | None, str | None, str]] = [
            ("fund_manager", "23", None, "黑龙江省基金管理 demo fund manager"),
            ("window", "2301", None, "哈尔滨一站式窗口 demo window"),
            ("bank", None, "ICBC-HLJ", "工商银行接口 demo bank"),
            ("auditor", "23", None, "审计 demo auditor"),
            ("window", "2302", None, "齐齐哈尔一站式窗口 demo window"),
            ("window", "2310", None, "牡丹江一站式窗口 demo window"),
            ("bank", None, "ABC-HLJ", "农业银行接口 demo bank"),
            ("bank", None, "PSBC-HLJ", "邮储银行接口 demo bank"),
            ("bank", None, "HRBB", "哈尔滨银行接口 demo bank"),
        ]
        for role, prefix, bank, label in demo_clients:
            client, token = await clients.add_client(
                conn, admin_actor, role=role, name=label, region_prefix=prefix, bank_code=bank
            )
            scope = prefix or bank or "all"
            actors[role if role in ("fund_manager", "auditor") else f"{role}:{scope}"] = Actor(
                client.id, "demo"
            )
            entry = {"client_id": client.id, "token": token, "scope": scope}
            if role in result:
                more.append({"role": role, **entry})
            else:
                result[role] = entry
        result["more_clients"] = more

        demo = _Demo(conn, today, actors)
        for spec in CITIES:
            await fund_service.create_fund(
                conn,
                admin_actor,
                code=spec.code,
                name=spec.name,
                region_code=spec.region,
                policy_edition=spec.edition,
                policy_overrides=spec.overrides,
            )
            policy = await fund_service.fund_policy(conn, spec.code, today)
            demo.funds[spec.code] = _Fund(spec, policy, actors[f"window:{spec.prefix}"])
        demo.plan_funds()
        demo.plan_people()
        await demo.run()
        await reservations.lapse_expired(conn, LAPSE_JOB, today=today)
        summary = await _summary(conn, today)
        if demo.refused:
            summary["approvals_refused"] = dict(demo.refused)
        result["summary"] = summary
    return result
