"""Connections and nothing else: WebSocket endpoint, HTTP API, token checks, send queues."""
