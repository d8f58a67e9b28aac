"""Guarantee funds and the money that comes into them."""
