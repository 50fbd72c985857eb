"""Shared runtime glue for every Borsa service."""
