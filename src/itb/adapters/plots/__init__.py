"""Plots (matplotlib, Agg backend): the only place matplotlib appears."""
