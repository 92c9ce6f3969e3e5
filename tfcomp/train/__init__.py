"""The one training loop every trainer shares, and the trainers built on it."""
