"""Seed 002 (workspace runs). Mapping only, no rules (see ``faces``)."""
