"""Airflow-facing adapters of the crawl control plane: connections, run windows, settings.

Each piece is small and hands the real work to the ``crawlops`` domain package.
"""
