"""Interest subsidies (贴息): the interest engine, the rules of each edition, claim periods, claims."""
