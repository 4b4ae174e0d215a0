"""The clinic's view: patients, implants and their command logs, visits, access and audit.

What a clinic records — never the simulator's hidden truth. Pure domain code:
records are frozen dataclasses, rules are functions; storage lives in the
adapters, use cases in :mod:`itb.services.clinic`.
"""
