"""Read models: projection functions, the runner that applies them exactly once, rebuilds."""
