"""The claim loop: leases, heartbeats, the reaper, graceful shutdown."""
