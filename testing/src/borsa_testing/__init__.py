"""Borsa test harness."""
