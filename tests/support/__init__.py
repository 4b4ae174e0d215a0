"""Test-suite infrastructure: private PostgreSQL cluster, database, browser and server fixtures."""
