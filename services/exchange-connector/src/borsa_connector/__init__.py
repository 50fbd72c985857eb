"""The exchange connector: one process per exchange answering normalised requests over NATS."""
