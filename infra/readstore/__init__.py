"""Where read models live: PostgreSQL in production, a SQLite file embedded."""
