"""Real-time measurement kernels (Cython) and their validating Python wrappers.

Knows arrays, nothing of I/O, clocks or UI. Every kernel follows the same shape: Settings (units
in names) -> explicit state -> ``update(block)`` -> outputs and flags, so a recording processed in
blocks of any size gives exactly the results of one block.
"""
