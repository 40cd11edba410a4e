"""Pure business rules: no I/O, no clock reads, unit-tested without Asterisk or a database."""
