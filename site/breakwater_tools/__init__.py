"""Breakwater's own tooling, beside the app and never deployed with it.

- :mod:`breakwater_tools.stack`: the local stack (MariaDB primary + replicas, Redis, RabbitMQ, gunicorn,
  Celery, Nginx, Varnish, Prometheus under supervisord) and the namespace cluster;
- :mod:`breakwater_tools.bench`: the benchmark-only routes (``/_bench/``);
- :mod:`breakwater_tools.mail_sink`: the SMTP sink that stores what the stack mails;
- :mod:`breakwater_tools.cli`: the ``breakwater stack|cluster|mail`` commands, plugged into the app's
  ``breakwater`` command through the ``breakwater.commands`` entry point;
- :mod:`breakwater_tools.lint`: the import-linter contract for private names.

Installed with the ``tools`` extra (supervisor, aiosmtpd); the app's image installs none of it.
"""
