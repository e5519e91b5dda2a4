"""Logs, Prometheus metrics and OpenTelemetry traces for every process."""
