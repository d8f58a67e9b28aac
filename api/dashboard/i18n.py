"""Words and forms of the dashboard: Simplified Chinese by default, English on request.

Amounts go through `loanfund.money` (¥1,234,567.89, or 万元 in wide tables); dates are written
2026年12月1日 in Chinese and 2026-12-01 in English.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from loanfund.clock import SHANGHAI
from loanfund.money import format_display, format_wan

LANGUAGES = ("zh", "en")
DEFAULT = "zh"

# key: (中文, English)
WORDS: dict[str, tuple[str, str]] = {
    "app_title": ("创业担保贷款基金 管理看板", "Loan guarantee fund dashboard"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "name": ("用户名", "Name"),
    "password": ("密码", "Password"),
    "sign_in_failed": ("用户名或密码错误", "Wrong name or password"),
    "sign_in_locked": ("登录失败次数过多，请稍后再试", "Too many failed sign-ins; try again later"),
    "csrf_rejected": ("表单已失效，请刷新页面后重试", "The form expired; reload the page and try again"),
    "overview": ("基金概况", "Fund overview"),
    "leverage": ("放大倍数", "Leverage"),
    "matching": ("配套资金", "Matching"),
    "portfolio": ("贷款组合", "Portfolio"),
    "queues": ("待办事项", "Queues"),
    "audit": ("审计记录", "Audit trail"),
    "all_funds": ("全部基金", "All funds"),
    "fund": ("基金", "Fund"),
    "fund_code": ("基金代码", "Fund code"),
    "region": ("地区", "Region"),
    "scope": ("范围", "Scope"),
    "as_of": ("截至", "As of"),
    "show": ("显示", "Show"),
    "role_fund_manager": ("基金管理人", "Fund manager"),
    "role_auditor": ("审计员", "Auditor"),
    "cash": ("现金", "Cash"),
    "deposited": ("合作银行存款", "Deposited at banks"),
    "contributed": ("资金来源合计", "Contributed"),
    "compensation_paid": ("已代偿", "Compensation paid"),
    "recovered": ("已追偿", "Recovered"),
    "written_off": ("已核销", "Written off"),
    "recoverable": ("待追偿", "Recoverable"),
    "subsidy_budget": ("贴息资金余额", "Subsidy budget"),
    "subsidy_received": ("贴息资金到位", "Subsidy received"),
    "subsidy_paid": ("已拨付贴息", "Subsidy paid"),
    "sources": ("资金来源", "Money by source"),
    "source_provincial": ("省级拨付", "Provincial"),
    "source_local_match": ("地方配套", "Local match"),
    "source_central": ("中央财政", "Central"),
    "source_deposit_interest": ("存款利息", "Deposit interest"),
    "source_donation": ("社会捐赠", "Donations"),
    "source_other": ("其他", "Other"),
    "bank": ("合作银行", "Bank"),
    "bank_code": ("银行代码", "Bank code"),
    "agreement_status": ("协议状态", "Agreement"),
    "status_active": ("正常", "active"),
    "status_suspended": ("暂停", "suspended"),
    "status_ended": ("已到期", "ended"),
    "deposit": ("存款", "Deposit"),
    "multiple": ("放大倍数上限", "Multiple"),
    "capacity": ("担保额度", "Capacity"),
    "outstanding": ("在保余额", "Outstanding"),
    "reserved": ("已预留", "Reserved"),
    "headroom": ("可用额度", "Headroom"),
    "ratio": ("实际放大倍数", "Leverage ratio"),
    "flag": ("提示", "Flag"),
    "flag_ok": ("", ""),
    "flag_near": ("接近上限", "near limit"),
    "flag_over": ("超出额度", "over capacity"),
    "leverage_bars": ("各银行放大倍数（实际 / 上限）", "Leverage per bank (ratio / multiple)"),
    "leverage_history": ("放大倍数走势（月末，取自总账）", "Leverage history (month ends, from the ledger)"),
    "history_note": (
        "历史数据按月末由总账过账汇总计算。",
        "History is summed from ledger postings at each month end.",
    ),
    "total": ("合计", "Total"),
    "allocation": ("省级拨款", "Allocation"),
    "reference": ("文号", "Reference"),
    "amount": ("金额", "Amount"),
    "required": ("应配套", "Required"),
    "matched": ("已配套", "Matched"),
    "shortfall": ("缺口", "Shortfall"),
    "due_on": ("到期日", "Due"),
    "status": ("状态", "Status"),
    "match_met": ("已完成", "met"),
    "match_pending": ("进行中", "pending"),
    "match_overdue": ("已逾期", "overdue"),
    "loans_by_status": ("贷款状态", "Loans by status"),
    "loans_by_bucket": ("逾期天数分布", "Delinquency (days past due)"),
    "loan_active": ("正常", "active"),
    "loan_overdue": ("逾期", "overdue"),
    "loan_repaid": ("已结清", "repaid"),
    "loan_compensated": ("已代偿", "compensated"),
    "loan_written_off": ("已核销", "written off"),
    "bucket_current": ("未逾期", "current"),
    "bucket_1-30": ("1–30天", "1–30 days"),
    "bucket_31-60": ("31–60天", "31–60 days"),
    "bucket_61-90": ("61–90天", "61–90 days"),
    "bucket_90+": ("90天以上", "over 90 days"),
    "count": ("笔数", "Count"),
    "people": ("人数", "People"),
    "principal": ("发放金额", "Principal"),
    "bucket": ("区间", "Bucket"),
    "borrowers_by_category": ("借款人类别", "Borrowers by category"),
    "category": ("类别", "Category"),
    "outcomes": ("扶持成效", "Outcomes"),
    "loans_made": ("发放贷款笔数", "Loans made"),
    "borrowers_with_loans": ("获贷人数", "Borrowers with loans"),
    "loans_4050": ("其中向“4050”人员发放笔数", "of which to 4050 persons"),
    "number": ("数量", "Number"),
    "jobs_created": ("带动就业人数", "Jobs created"),
    "kind_individual": ("个人", "individuals"),
    "kind_enterprise": ("小微企业", "small firms"),
    "applications_awaiting": ("待审批担保申请", "Applications awaiting approval"),
    "compensation_claims": ("代偿申请", "Compensation claims"),
    "subsidy_claims": ("贴息申请", "Subsidy claims"),
    "queue_empty": ("暂无待办。", "Nothing waiting."),
    "application": ("申请编号", "Application"),
    "borrower": ("借款人", "Borrower"),
    "term_months": ("期限（月）", "Term (months)"),
    "applied_on": ("申请日期", "Applied on"),
    "guarantee_kind": ("担保方式", "Guarantee"),
    "is_4050": ("4050", "4050"),
    "actions": ("操作", "Actions"),
    "approve": ("批准", "Approve"),
    "reject": ("拒绝", "Reject"),
    "reason": ("理由", "Reason"),
    "approved_msg": ("已批准申请", "Approved application"),
    "rejected_msg": ("已拒绝申请", "Rejected application"),
    "already_done": ("该操作已执行（重复提交）", "Already done (submitted twice)"),
    "refused": ("操作未执行", "Not done"),
    "read_only": ("审计员只能查看。", "Auditors may only look."),
    "entity_type": ("对象类型", "Entity type"),
    "entity_id": ("对象编号", "Entity id"),
    "occurred_at": ("时间", "When"),
    "actor": ("操作人", "Who"),
    "action": ("动作", "Action"),
    "changes": ("内容", "Changes"),
    "search": ("查询", "Search"),
    "audit_hint": (
        "输入对象类型和编号（如 application / app_…）查看其全部记录。",
        "Enter an entity type and id (e.g. application / app_…) to see its whole trail.",
    ),
    "export": ("导出", "Export"),
    "wan_yuan": ("万元", "10k yuan"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "more_rows": ("仅显示前 {n} 条。", "Only the first {n} shown."),
    "not_found": ("未找到", "Not found"),
    "error": ("出错了", "Something went wrong"),
    "back": ("返回", "Back"),
    "cat_laid_off": ("下岗失业人员", "laid off"),
    "cat_registered_unemployed": ("城镇登记失业人员", "registered unemployed"),
    "cat_hard_to_employ": ("就业困难人员", "hard to employ"),
    "cat_bankrupt_soe_staff": ("关闭破产国有企业职工", "staff of bankrupt SOEs"),
    "cat_veteran": ("退役军人", "veterans"),
    "cat_graduate": ("高校毕业生", "graduates"),
    "cat_returning_migrant": ("返乡创业农民工", "returning migrant workers"),
    "cat_rural_entrepreneur": ("农村自主创业农民", "rural entrepreneurs"),
    "cat_disabled": ("残疾人", "disabled people"),
    "cat_poverty_registered": ("建档立卡贫困人口", "registered poor"),
    "cat_small_firm": ("小微企业", "small firms"),
    "gk_credit": ("信用", "credit"),
    "gk_guarantor": ("保证人", "guarantor"),
    "gk_collateral": ("抵押", "collateral"),
    "gk_joint": ("联保", "joint"),
    "leverage_exceeded": ("该银行可用额度不足", "not enough headroom at this bank"),
    "agreement_suspended": ("与该银行的协议已暂停", "the agreement with this bank is suspended"),
    "no_agreement": ("与该银行没有生效的协议", "no agreement in force with this bank"),
    "guarantor_limit_exceeded": ("保证人担保笔数已达上限", "a guarantor backs too many loans"),
    "same_maker_checker": ("提交人不能审批自己的申请", "the submitter may not approve"),
    "invalid_state": ("申请状态已变化", "the application is no longer waiting"),
    "validation_error": ("请填写理由", "a reason is needed"),
    "idempotency_key_reused": ("表单已使用，请刷新页面", "the form was used; reload the page"),
    "request_in_progress": ("上一次提交仍在处理中，请稍后刷新", "the first submission is still running"),
    "forbidden": ("无权执行此操作", "not allowed for your role"),
    "jobs": ("定时任务", "Job runs"),
    "jobs_hint": (
        "后台定时任务的运行记录与预警事件（只读）。",
        "The scheduler's runs and the alerts they raised (read only).",
    ),
    "job_status": ("各任务进度", "Progress of each job"),
    "job_runs": ("最近运行记录", "Latest runs"),
    "alerts": ("最近预警", "Recent alerts"),
    "job": ("任务", "Job"),
    "last_completed": ("已完成至", "Completed through"),
    "last_run": ("最近运行的营业日", "Last run for"),
    "outcome": ("结果", "Outcome"),
    "outcome_ok": ("成功", "ok"),
    "outcome_failed": ("失败", "failed"),
    "trigger": ("触发方式", "Trigger"),
    "trigger_scheduler": ("自动", "scheduler"),
    "trigger_manual": ("手动", "manual"),
    "business_date": ("营业日", "Business date"),
    "started_at": ("开始时间", "Started"),
    "ended_at": ("结束时间", "Ended"),
    "counts": ("处理数量", "Counts"),
    "details": ("详情", "Details"),
    "alert_type": ("预警类型", "Alert"),
    "alert_capacity_alert": ("担保额度预警", "capacity alert"),
    "alert_capacity_alert_cleared": ("担保额度预警解除", "capacity alert cleared"),
    "alert_loan_overdue": ("贷款逾期", "loan overdue"),
    "alert_compensation_rate_alert": ("代偿率预警", "compensation rate alert"),
    "alert_compensation_red_flag": ("代偿率超限", "compensation rate red flag"),
    "alert_subsidy_draft": ("贴息申请草稿", "subsidy claim draft"),
    "claim": ("申请编号", "Claim"),
    "loan": ("贷款编号", "Loan"),
    "days_past_due": ("逾期天数", "Days past due"),
    "claimed_on": ("申请日期", "Claimed on"),
    "period": ("期间", "Period"),
    "lines": ("笔数", "Lines"),
    "claimed_amount": ("申请金额", "Claimed"),
    "approved_amount": ("核准金额", "Approved"),
    "subsidy_submitted": ("待审核", "awaiting review"),
    "subsidy_approved": ("待拨付", "awaiting payment"),
    "pay": ("拨付", "Pay"),
    "done_claim_approved": ("已批准代偿并拨付", "Compensation approved and paid"),
    "done_claim_rejected": ("已拒绝代偿申请", "Compensation claim rejected"),
    "done_subsidy_approved": ("已核准贴息申请", "Subsidy claim approved"),
    "done_subsidy_paid": ("已拨付贴息", "Subsidy paid"),
    "insufficient_subsidy_budget": ("贴息预算不足", "the subsidy budget is short"),
    "insufficient_deposit": ("基金在该银行的存款不足", "not enough fund deposit at the bank"),
    "language": ("English", "中文"),
}


def translator(lang: str) -> Callable[..., str]:
    index = 0 if lang == "zh" else 1

    def t(key: str, **values: object) -> str:
        pair = WORDS.get(key)
        text = key if pair is None else pair[index]
        return text.format(**values) if values else text

    return t


def format_date(value: date | None, lang: str) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        local = value.astimezone(SHANGHAI)
        if lang == "zh":
            return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
        return f"{local:%Y-%m-%d %H:%M}"
    if lang == "zh":
        return f"{value.year}年{value.month}月{value.day}日"
    return value.isoformat()


def yuan(fen: int | None) -> str:
    return "" if fen is None else format_display(fen)


def wan(fen: int | None) -> str:
    return "" if fen is None else format_wan(fen)


def ratio(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:.2f}"
