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
step is a unit of work (`loanfund.uow.Tx`) whose business date is its simulated day, because the
services judge "not in the future", reservations and lapses by the business date. The
reservation-lapse job runs as the scheduler would, on the days it has something to do. The
near-limit bank takes the last loans of today, sized from its headroom.
Every choice comes from `random.Random(2026)` and every date is relative to today, so the demo is the
same on every run (up to server-made ids) and always looks current.

The package: `province` (the specification: cities, banks, agreements, people's profiles),
`identities` (check digits), `plan` (the generators that turn the specification into dated steps),
`replay` (the steps, executed through the library's services) and `run` (`fill_demo`).
"""

from loanfund.demo.identities import organisation_code_check, resident_id_check, uscc_check
from loanfund.demo.run import fill_demo

__all__ = ["fill_demo", "organisation_code_check", "resident_id_check", "uscc_check"]
