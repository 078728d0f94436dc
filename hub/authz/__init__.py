"""Access decisions: the plan made once per request, and the release of values under it."""
