"""The HTTP service (`tfcomp serve`, the `tfcomp[serve]` extra): see `tfcomp.serve.app`."""
