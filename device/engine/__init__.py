"""Training engine: exercise library, protocols, coaching cues, session store, history."""
