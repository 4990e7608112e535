"""``mloop demo``: the whole loop on built-in ride-hailing data, one capability after another."""
