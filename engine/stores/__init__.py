"""State behind Protocols: challenges and counters (Redis or memory), users and factors (SQLite)."""
