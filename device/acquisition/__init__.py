"""Acquisition: the sampler thread that turns a backend into blocks of samples, and the recorder."""
