# The production image: one image, run as web (gunicorn), tracking, worker and beat by
# docker-compose.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CRM_EMBEDDED_SERVICES=0 \
    CRM_PRODUCTION=1

RUN useradd --create-home --uid 1000 crm
WORKDIR /app

COPY pyproject.toml ./
COPY crm ./crm
COPY contacts ./contacts
COPY inbox ./inbox
COPY mailsync ./mailsync
COPY tracking ./tracking
RUN pip install --upgrade pip && pip install .

COPY manage.py ./
COPY templates ./templates
COPY static ./static
# collectstatic needs settings, not a database: give it throwaway URLs.
RUN SECRET_KEY=build DATABASE_URL=postgresql://build@localhost/build REDIS_URL=redis://localhost \
    python manage.py collectstatic --noinput

USER crm
EXPOSE 8000
CMD ["gunicorn", "crm.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4", "--access-logfile", "-"]
