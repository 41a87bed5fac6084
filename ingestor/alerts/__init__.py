"""Live budget alerts: budgets from settings (``budgets``), tumbling windows by event time and
one ``cost_threshold_exceeded`` event per budget, subject and window (``windows``). Pure: the
worker (``worker/app.py``, ``worker/flusher.py``) keeps the window totals in a Faust table and
stores the alerts it is handed. Nothing is imported here, so that ``settings`` can read budgets
cheaply.
"""
