"""The embedded demo: seven department databases of synthetic citizens, their manifests and callers."""
