# The one image web, worker and beat run from (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=campaign.settings \
    SYS_VAR_DIR=/data

WORKDIR /app
# Pango lays out the postal letters' PDFs (WeasyPrint); Noto covers all 21 letter languages'
# scripts, so printed letters in Japanese or Greek show their glyphs.
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
       libharfbuzz-subset0 fonts-noto-core fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml ./
RUN pip install .
COPY . .
# Translations are compiled into the image (Babel, no gettext needed); a throwaway key lets
# the settings load at build time only.
RUN SECRET_KEY=build-only DEBUG=0 python manage.py compile_translations -v0 \
    && useradd --uid 10001 --home-dir /app app \
    && mkdir -p /data && chown app /data
USER app
EXPOSE 8000
CMD ["gunicorn", "campaign.wsgi", "--bind", "0.0.0.0:8000"]
