"""Artifacts per strategy: dependencies for the target, staging, (later) zips, layers, images."""
