"""Trainers whose code is the user's: the engine runs them through a file contract (docs/own-model.md)."""
