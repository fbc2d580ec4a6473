"""Simulated rig: register-level chip simulators behind the bus seam, rig model, scenarios."""
