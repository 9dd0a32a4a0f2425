"""Imported by the worker pool's fork server (`ingest._pool`): the compiled EVTX reader's machine
code is loaded there once (compiled, the first time on a machine), so every worker forked from it
starts with the code instead of loading it again (about half a second a worker)."""

from wormhunt.sources import binxml

binxml.warm()
