"""Borsa bot runner."""
