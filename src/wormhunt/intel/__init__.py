"""Threat intelligence: the family knowledge base, indicator matching, STIX and MISP exchange."""
