"""gunicorn entry point of a benchmark stack (BREAKWATER_BENCH_ROUTES=1): the app plus the /_bench/ routes.

The stack starts this module instead of ``breakwater.wsgi`` when the setting is on, so a deployment that
installs only the ``breakwater`` package can never mount them.
"""

from breakwater.app import create_app
from breakwater_tools.bench import views, workers

app = create_app()
app.register_blueprint(views.bp)
app.register_blueprint(workers.bp)
