"""Voice engines behind one interface; `registry.create_engine(name)` picks one by name."""
