# The application image used by docker-compose.yml for app, worker, migrate and nginx-config.
FROM python:3.11-slim
WORKDIR /srv/breakwater
COPY pyproject.toml README.md ./
COPY site ./site
COPY db ./db
COPY nginx ./nginx
RUN pip install --no-cache-dir -e . && useradd --system --home /srv/breakwater breakwater
USER breakwater
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "--worker-class", "gthread", "breakwater.wsgi:app"]
