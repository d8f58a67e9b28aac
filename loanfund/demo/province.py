"""The demo province's specification: its cities, funds, banks and agreements, the people who borrow
there and what becomes of their applications. Data only; `plan` turns it into a dated history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from loanfund.audit import Actor

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
class CitySpec:
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
    CitySpec(
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
    CitySpec(
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
    CitySpec(
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
class AgreementSpec:
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
    AgreementSpec("HRB", "ICBC-HLJ", 8, 80, 90, True, 730, ((725, "1200000"), (380, "400000")), 45),
    AgreementSpec("HRB", "HRBB", 10, 80, 90, True, 710, ((705, "300000"),), 20),
    AgreementSpec(
        "HRB", "ABC-HLJ", 6, 70, 90, False, 730, ((724, "3000000"),), 20, withdrawal=(100, "500000")
    ),
    AgreementSpec(
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
    AgreementSpec("QQHR", "ABC-HLJ", 5, 80, 90, True, 730, ((722, "1500000"),), 40),
    AgreementSpec("QQHR", "PSBC-HLJ", 8, 80, 90, True, 730, ((718, "1000000"),), 35),
    AgreementSpec("QQHR", "ICBC-HLJ", 6, 75, 90, True, 520, ((515, "800000"),), 25),
    AgreementSpec("MDJ", "PSBC-HLJ", 5, 80, 90, True, 730, ((721, "800000"),), 65),
    AgreementSpec("MDJ", "ABC-HLJ", 4, 80, 90, True, 730, ((719, "400000"),), 35),
]

# ---- identity numbers ----------------------------------------------------------------------------


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
