"""Borsa bus contract."""
