"""Borsa reporting."""
