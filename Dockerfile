# liqbot: records venue liquidations and answers on Telegram/Discord.
#   docker build -t liqbot .
#   docker run -d --name liqbot -v liqbot-data:/data \
#     -e LIQBOT_TELEGRAM_TOKEN=... -v $PWD/config.toml:/config.toml:ro liqbot run --config /config.toml
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install . && rm -rf /src

# Non-root; the SQLite database lives on a volume (storage.path defaults to data/liqbot.sqlite
# relative to the working directory, i.e. /data/data/liqbot.sqlite).
RUN useradd --create-home --uid 10001 liqbot && mkdir -p /data && chown liqbot /data
USER liqbot
WORKDIR /data
VOLUME ["/data"]

# Tokens come from the environment only (LIQBOT_TELEGRAM_TOKEN, LIQBOT_DISCORD_TOKEN).
ENTRYPOINT ["liqbot"]
CMD ["run"]
