"""UIN: a numeric-id messenger over UDP, designed in this project (docs/protocols/uin.md)."""
