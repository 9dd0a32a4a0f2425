"""Collectors: gather triage bundles (docs/bundle.md) from the machine wormhunt runs on."""
