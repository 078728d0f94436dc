"""Maintenance of department databases: encrypting a plain column in place
(`encrypt_column`) and moving encrypted values to the newest data-key version (`reencrypt`).

These are the only parts of the hub that write to a department's database, and they do it
through the separate write capability of `connectors.sql.writer`, opened on a URL the operator
names for the occasion; nothing on a request path imports them. Every step is a batch in one
transaction with a compare-and-set on what was read, so a run killed at any moment loses
nothing and the next run continues. Progress goes to a callback; the command line
(`hub.cli.maintenance`) draws it and prints the summaries.
"""
