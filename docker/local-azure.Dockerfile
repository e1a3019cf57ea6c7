# The local Azure for docker-compose.yaml: Azurite (pinned by package-lock.json) + the ARM emulator.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/local-azure
COPY requirements.txt package.json package-lock.json ./
RUN pip install --no-cache-dir -r requirements.txt && npm ci --no-audit --no-fund
COPY emulator ./emulator
COPY stack ./stack
COPY Configuration ./Configuration
