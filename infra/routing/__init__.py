"""Between the write API's processes: a slot for each, and calls from one to another
over local Unix sockets (ADR 0028)."""
