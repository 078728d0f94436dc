"""Onboarding a department: a manifest drafted from its database (`hub manifest draft`)."""
