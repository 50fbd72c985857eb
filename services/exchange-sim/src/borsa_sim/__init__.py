"""The Borsa exchange simulator."""
