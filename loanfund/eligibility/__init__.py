"""Eligibility: the rules of the fund's policy in force on the application date, one check per rule.

`rules` is pure (facts in, checks out) and is what the unit tests exercise edition by edition;
`service` gathers the facts from the database.
"""
