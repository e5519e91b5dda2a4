"""Kafka: topics, the relay that publishes the log, and the consumer-group projector."""
