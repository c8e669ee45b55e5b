"""mlwatch's monitoring side: collectors, store, ingest API, checks, alerts and the worker.

The SDK (``monitor.sdk``) is importable on its own: it loads none of pandas, mlflow,
evidently or streamlit.
"""

__version__ = "0.1.0"
