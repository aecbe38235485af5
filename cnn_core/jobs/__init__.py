"""Jobs: the job manager (runs and sweeps in their own processes), its fair queue and each person's quotas."""

from cnn_core.jobs.fair import fair_order, queue_wait
from cnn_core.jobs.manager import POLL_SECONDS, JobManager, default_concurrency
from cnn_core.jobs.quotas import Quotas, limits

__all__ = ["POLL_SECONDS", "JobManager", "Quotas", "default_concurrency", "fair_order", "limits", "queue_wait"]
