"""Lineage: typed edges between records across departments, recorded links and traces."""
