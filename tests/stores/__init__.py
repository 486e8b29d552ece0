"""Token-store tests: the stores against a real redis-server, and fleets of processes."""
