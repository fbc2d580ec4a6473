"""spinecoach: a gym-floor coach for posterior-chain strength work on a band/chain rig."""

__version__ = "0.1.0"
