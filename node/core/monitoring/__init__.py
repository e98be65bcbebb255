"""Watching a running node from outside: ``GET /health`` and Prometheus metrics (decision 0028).

Nothing here carries case content, names, places or ids: health gives fixed reasons and
numbers; metrics are numbers whose only labels are HTTP methods and route templates.
"""

from node.core.monitoring.metrics import MetricSource, NodeMetrics, Reading
from node.core.monitoring.sync_watch import RunningSync

__all__ = ["MetricSource", "NodeMetrics", "Reading", "RunningSync"]
