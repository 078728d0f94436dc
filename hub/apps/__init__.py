"""Registered department apps and their API tokens."""
