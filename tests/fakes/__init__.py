"""Fakes of the daemon's collaborators, for tests that need no root."""
