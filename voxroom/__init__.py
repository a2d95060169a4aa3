"""Voxroom: typed text heard in the sender's own voice, live, in every ear of a room."""

__version__ = "0.1.0"
