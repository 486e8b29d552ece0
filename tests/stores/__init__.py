"""Token-store tests."""
