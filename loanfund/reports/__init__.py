"""Read models for people: a region's funds, leverage, portfolio and queues at a glance.

Each report reads a whole scope (a region prefix, optionally one fund) in a few statements, whatever
the number of funds, banks or loans, and returns frozen dataclasses in fen; formatting is the caller's.
"""
