"""Seed 001 (extracts): snake_case on the wire. Mapping only, no rules (see ``faces``)."""
