"""`photos fetch --dry-run`: the listing runs as in a real run (and is kept, so the real run
asks only for what is new) but nothing is queued for download and no file moves; then the
size of a few photos, asked with HEAD, is scaled to what is left to download."""

from __future__ import annotations

import itertools

import requests

from inatdl.client import Timeout
from inatdl.constants import DRY_RUN_SAMPLE
from inatdl.download import head_length
from inatdl.report import FetchReport
from inatdl.state import FAILED, PENDING, Store


def estimate(
    report: FetchReport, store: Store, session: requests.Session, size: str, timeout: Timeout
) -> None:
    """Each taxon's photos to download at ``size`` and their bytes, from a sample of that
    size's photos asked with HEAD (each size by its own sample)."""
    sampled: list[int] = []
    taxa = [taxon for taxon in report.taxa if taxon.size == size]
    for taxon in taxa:
        jobs = store.jobs_to_retry(taxon.taxon_id, size, batch=DRY_RUN_SAMPLE)
        for job in itertools.islice(jobs, DRY_RUN_SAMPLE):
            report.head_requests += 1
            length = head_length(session, job.url, timeout)
            if length is not None:
                sampled.append(length)
    average = sum(sampled) // len(sampled) if sampled else 0
    for taxon in taxa:
        counts = store.status_counts(taxon.taxon_id, size)
        taxon.queued = counts.get(PENDING, 0) + counts.get(FAILED, 0)
        taxon.estimated_bytes = taxon.queued * average
