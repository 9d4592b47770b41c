"""The operator core: subscribers, tariffs, packages, money, the clock, the store, and one
module per service of SPEC.md.  No network I/O here; services return the replies to send."""
