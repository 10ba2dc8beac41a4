# liqbot: records venue liquidations and answers on Telegram/Discord.
#   docker build -t liqbot .
#   docker run -d --name liqbot -v liqbot-data:/data -e LIQBOT_TELEGRAM_TOKEN=... \
#     -e LIQBOT_CONFIG=/config.toml -v $PWD/config.toml:/config.toml:ro liqbot
# The database is /data/liqbot.sqlite (on the volume); `docker ps` shows the health check.

# An exact tag, so a rebuild gets the same Python and Debian (bump it deliberately).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 liqbot && mkdir -p /data && chown liqbot /data

# Dependencies first, from pyproject.toml alone: editing the code does not reinstall them.
WORKDIR /src
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && pip install -r requirements.txt

COPY README.md ./
COPY bot ./bot
RUN pip install --no-deps . && rm -rf /src

# Non-root. storage.path defaults to data/liqbot.sqlite relative to the working
# directory; data/ here is the volume, so the database is /data/liqbot.sqlite.
USER liqbot
WORKDIR /home/liqbot
RUN ln -s /data data
# Build matplotlib's font cache now, not on the first /chart of every container.
RUN python -c "from matplotlib import font_manager; font_manager.fontManager"
VOLUME ["/data"]

# `liqbot health`: the database opens and a feed recorded in the last 10 minutes.
HEALTHCHECK --interval=60s --timeout=20s --start-period=120s --retries=3 CMD ["liqbot", "health"]

# /healthz and /metrics ([ops] http_port; set [ops] http_host = "0.0.0.0" to reach them from outside
# the container, e.g. `-p 127.0.0.1:8321:8321` or a Prometheus on the same network).
EXPOSE 8321

# Tokens come from the environment only (LIQBOT_TELEGRAM_TOKEN, LIQBOT_DISCORD_TOKEN).
ENTRYPOINT ["liqbot"]
CMD ["run"]
