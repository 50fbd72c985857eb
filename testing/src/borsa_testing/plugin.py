"""Real-server fixtures, registered for every package through the pytest11 entry point."""
