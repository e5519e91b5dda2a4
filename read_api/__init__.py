"""The read API: read models, with the projection position each answer reflects."""
