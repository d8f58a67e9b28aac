"""Applications: from the window's submission through the fund's guarantee to the bank's loan."""
