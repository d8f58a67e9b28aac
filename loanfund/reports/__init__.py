"""Reports.

For people at a glance (the dashboard): a region's funds, leverage, matching, portfolio and queues,
each read for a whole scope (a region prefix, optionally one fund) in a few statements, whatever the
number of funds, banks or loans (`overview`, `leverage`, `matching`, `portfolio`, `queries`).

For the record (issue 11): the portfolio report of a fund, and of a fund at one bank, as of a date,
in JSON, CSV and XLSX (`portfolio_report`, `portfolio_queries`, `export`).

All return frozen dataclasses in fen; formatting is the caller's.
"""
