"""Seed 003 (bulk export). Mapping only, no rules (see ``faces``)."""
