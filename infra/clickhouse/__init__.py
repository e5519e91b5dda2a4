"""ClickHouse for the reporting read models: a server over HTTP, or chDB embedded."""
