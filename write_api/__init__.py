"""The write API: HTTP commands in, events appended, a consistency token out."""
