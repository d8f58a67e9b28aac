"""Partner banks and leverage: agreements, deposits, capacity and guarantee reservations.

`service` holds the agreement commands (create, suspend, resume, deposit, withdraw), `capacity` the
arithmetic and the live and ledger-rebuilt views, `reservations` the guarantee reservations that
applications and loans use, `queries` every SQL read.
"""
