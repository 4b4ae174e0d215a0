"""The ``itb`` command line (Typer + Rich)."""
