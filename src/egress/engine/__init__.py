"""Executes one run: plan → read → write → commit."""
