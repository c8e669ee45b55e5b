# The one image of every mlwatch process (server, worker, dashboard, agent, serve, MLflow server).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY monitor ./monitor
COPY retrain ./retrain
COPY dashboard ./dashboard
# The server side and the broker clients (the compose file's `mlwatch consume` reads NATS);
# a bare `pip install .` would be the SDK only. /mlartifacts belongs to mlwatch so that the
# MLflow server runs unprivileged: a fresh named volume mounted there takes this directory's owner.
RUN pip install --no-cache-dir -c constraints.txt '.[server,stream]' && useradd --create-home mlwatch \
    && mkdir /mlartifacts && chown mlwatch:mlwatch /mlartifacts
USER mlwatch
WORKDIR /home/mlwatch
ENTRYPOINT ["mlwatch"]
CMD ["--help"]
