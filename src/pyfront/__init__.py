"""pyfront: nginx + uWSGI + Supervisor in one tool."""

__version__ = "0.1.0"
