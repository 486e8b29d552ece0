"""pytest fixtures for users' own tests (placeholder: being written)."""
