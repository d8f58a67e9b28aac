"""Dashboard tests hash passwords with the cheapest argon2 parameters: the real ones (argon2-cffi's
defaults, tens of milliseconds and 64 MiB per hash by design) would make every sign-in in the suite
slow without testing anything more. The parameters live in each hash, so verification is the same
code path either way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from loanfund.users import service


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashes() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
        yield
