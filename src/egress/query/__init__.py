"""SQL generation from plans with sqlglot: user text is never concatenated into SQL."""
