"""Small helpers shared by every layer: time, ids, names, optional imports."""
