"""Sound: text normalisation and splitting, engines, enrollment, scheduling, Opus encoding."""
