"""Pydantic models of commands, requests, responses and problems; the wire contract."""
