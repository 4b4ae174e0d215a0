"""Entrypoints: translate input -> service -> output; no clinical rule lives here."""
