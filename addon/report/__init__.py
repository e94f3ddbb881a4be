"""Spend and usage report over the audit records (`python -m addon.report`, `ai-proxy-report`).

scan.py reads the records, figures.py sums them by group, engine.py shares the files among worker processes,
output.py writes the table, CSV, JSON or Markdown, and chart.py draws the PNG (matplotlib, optional).
"""
