"""Exchange APIs: one interface, one ccxt-backed implementation, and each exchange's quirks as data."""
