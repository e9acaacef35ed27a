# edgeproxy node image (docs/operations.md "Container"). Build: docker build -t edgeproxy .
# Run with a mounted config:  docker run -v $PWD/config:/etc/edgeproxy -p 8443:8443 edgeproxy
# The config's listeners must then bind 0.0.0.0 (the status listener may stay on 127.0.0.1: the
# health check runs inside the container).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps -w /wheels .

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /var/lib/edgeproxy --create-home \
        --shell /usr/sbin/nologin edgeproxy
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels /root/.cache

COPY config/edgeproxy.toml /etc/edgeproxy/edgeproxy.toml
USER 10001:10001
WORKDIR /var/lib/edgeproxy
# Edge TLS, admin API and status listener; bind addresses come from the config file. Ports below
# 1024 need `--cap-add NET_BIND_SERVICE` (or map 443 to 8443).
EXPOSE 8443 9000 9100
# /healthz of the status listener (status.listen, 127.0.0.1:9100 by default); no curl in the
# image, so Python asks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://' + os.environ.get('EDGEPROXY_STATUS', '127.0.0.1:9100') + '/healthz', timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["edgeproxy"]
CMD ["serve", "--config", "/etc/edgeproxy/edgeproxy.toml"]
