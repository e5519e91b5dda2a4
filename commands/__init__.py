"""Command handlers: load the aggregates a command touches, decide, save once."""
