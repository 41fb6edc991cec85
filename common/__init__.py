"""Helpers every command shares: atomic writes and hashing (files), process-tree memory and cores
(resources), what a run used (provenance).

Below signals, envs and trader: it imports none of them.
"""
