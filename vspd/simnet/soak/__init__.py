"""The chaos soak: run, plan, faults and checks."""
