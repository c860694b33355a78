"""The ``egress`` command: serve, worker, db, demo."""
