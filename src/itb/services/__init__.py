"""Use cases: take primitives, return plain data; persistence only through ports."""
