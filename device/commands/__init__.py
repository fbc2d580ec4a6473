"""Sub-commands of `spinecoach`; each module exposes register(subparsers)."""
