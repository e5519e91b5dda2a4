"""The event store adapter: the eventsourcing library on PostgreSQL or SQLite, its units of
work, group commit, the log readers, and personal-data sealing inside the mapper."""
