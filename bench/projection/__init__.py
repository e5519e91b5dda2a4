"""The projection-path bench's parts: the stages' clock, the event store's filler, the
Kafka stages, the projector, the rebuilds and the report; bench/projection_path.py runs
them in order."""
