"""Membership and fan-out: the same encoded bytes to every member of a room."""
