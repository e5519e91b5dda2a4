"""Auditors' adapters: queries over the stored log, the hash chain, signed checkpoints,
exports and imports."""
