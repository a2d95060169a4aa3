"""Every yes or no: consent, grants, quotas, rate limits, content filter, audit.

- `service`: `PolicyService`, the one decision every `say` passes, and the owner's controls
- `store`: the state interface and `create_store`; `memory_store` and `redis_store` implement it
- `content_filter` and `normalize`: block lists matched after undoing the usual evasions
- `audit`: one record per decision, with a keyed hash of the text, never the text
- `config`, `clock`, `buckets`, `voice_directory`: settings, time, token buckets, enrolled voices
"""
