"""Credentials for the providers' clouds: one module per cloud."""
