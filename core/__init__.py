"""The contracts every layer of the twin shares. Imports nothing else of the project."""
