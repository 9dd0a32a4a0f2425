"""Offline file identification: hashes, PE facts, YARA, ssdeep and ClamAV over files and folders."""

from wormhunt.identify.model import FileResult, IdentifyResult, Summary
from wormhunt.identify.scan import identify

__all__ = ["FileResult", "IdentifyResult", "Summary", "identify"]
