"""Every yes or no: consent, grants, quotas, rate limits, content filter, audit."""
