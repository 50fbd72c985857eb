"""Borsa gateway: the HTTP API (and the web UI) in front of the bus and the database."""
