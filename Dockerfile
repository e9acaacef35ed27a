# edgeproxy node image. Build: docker build -t edgeproxy .
# Run with a mounted config:  docker run -v $PWD/config:/etc/edgeproxy edgeproxy
FROM python:3.11-slim-bookworm

RUN useradd --system --home-dir /var/lib/edgeproxy --create-home edgeproxy
WORKDIR /opt/edgeproxy
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && rm -rf /root/.cache

COPY config/edgeproxy.toml /etc/edgeproxy/edgeproxy.toml
USER edgeproxy
WORKDIR /var/lib/edgeproxy
# Edge TLS, admin API and status listener; bind addresses come from the config file.
EXPOSE 8443 9000 9100
STOPSIGNAL SIGTERM
ENTRYPOINT ["edgeproxy"]
CMD ["serve", "--config", "/etc/edgeproxy/edgeproxy.toml"]
