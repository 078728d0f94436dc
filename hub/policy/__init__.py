"""The access policy as data: its snapshot and seed format, the rules every version obeys
(terms, grants, row-rule coverage, mask strength), the decisions it makes (`decisions`, over
the Casbin `enforcer`), its store and change history, the live copy each instance runs, and
its administration."""
