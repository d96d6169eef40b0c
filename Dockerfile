# Two images from one file, used by docker-compose.yml:
# - target `app` (app, workers, migrate): only the `breakwater` package, what serves requests and runs tasks;
# - target `tools` (the SMTP sink, nginx-config, edge-config): the app plus site/breakwater_tools and its extra.
FROM python:3.11-slim AS app
WORKDIR /srv/breakwater
COPY pyproject.toml README.md ./
COPY site/breakwater ./site/breakwater
COPY db ./db
COPY nginx ./nginx
RUN pip install --no-cache-dir -e . && useradd --system --home /srv/breakwater breakwater
USER breakwater
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "--worker-class", "gthread", "breakwater.wsgi:app"]

FROM app AS tools
USER root
COPY site/breakwater_tools ./site/breakwater_tools
RUN pip install --no-cache-dir -e '.[tools]'
USER breakwater
