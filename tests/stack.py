"""Fixtures that run the apps as real servers (filled in by the frontend work)."""
