"""Simulation: the event-driven single-patient engine and the vectorised cohort engine."""
