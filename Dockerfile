# nova-host container image for machines with registry access (docs/deploy.md).
#   docker build -t nova-host .
#   docker run --rm -p 127.0.0.1:8787:8787 nova-host            # serve; GET /health
#   docker run --rm -v "$PWD/examples:/examples:ro" nova-host run /examples/hello.plan.json
# Without registry access, scripts/build-image.py assembles the same layout from the local build
# (no base image): both put the binary, drivers, sandbox helper and configuration at the paths an
# installed nova-host uses (`make install PREFIX=/usr/local`).

ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build: release build of the host and drivers, the sandbox helper, the C echo driver ----
FROM ${SWIFT_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libsqlite3-dev libseccomp-dev libjemalloc-dev pkg-config make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# One product per command: `swift build` builds only the last of several --product flags.
RUN swift build -c release --product nova-host \
 && for d in text http postgres graphql shell mcp_proxy; do swift build -c release --product "nova_$d" || exit 1; done
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=SC2016
RUN bin="$(swift build -c release --show-bin-path)" \
 && make -s -C Sources/Sandbox \
 && mkdir -p /out/usr/local/bin /out/usr/local/lib/nova-host/drivers/.gen /out/usr/local/share/nova-host /out/usr/lib/swift/linux \
 && make -s -C examples/drivers/c-echo OUT=/out/usr/local/lib/nova-host/drivers/libnova_echo.so ABI_INCLUDE=/src/Sources/DriverABI/include \
 && install -m 0755 "$bin/nova-host" /out/usr/local/bin/nova-host \
 && install -m 0755 "$bin/libNovaDependencies.so" /out/usr/local/lib/nova-host/libNovaDependencies.so \
 && install -m 0755 Sources/Sandbox/build/nova-sandbox /out/usr/local/bin/nova-sandbox \
 && for d in text http postgres graphql shell mcp_proxy; do install -m 0644 "$bin/libnova_$d.so" /out/usr/local/lib/nova-host/drivers/; done \
 && strip --strip-unneeded /out/usr/local/bin/* /out/usr/local/lib/nova-host/*.so /out/usr/local/lib/nova-host/drivers/*.so \
 && for f in /out/usr/local/lib/nova-host/drivers/*.so; do ln "$f" "/out/usr/local/lib/nova-host/drivers/.gen/$(sha256sum "$f" | cut -d' ' -f1).so"; done \
 && install -m 0644 configs/policy.default.json /out/usr/local/share/nova-host/policy.default.json \
 && sed '/"\$schema"/d' configs/drivers.json > /out/usr/local/share/nova-host/drivers.json \
 && printf '{"listen": {"host": "0.0.0.0", "port": 8787}, "shutdown_grace_seconds": 20}\n' > /out/usr/local/share/nova-host/host.json \
 && ldd /out/usr/local/bin/nova-host /out/usr/local/lib/nova-host/*.so /out/usr/local/lib/nova-host/drivers/*.so | awk '$3 ~ /\/swift\/linux\// { print $3 }' | sort -u \
    | xargs -I{} cp -L {} /out/usr/lib/swift/linux/ \
 && echo /usr/lib/swift/linux > /out/usr/lib/swift/nova-host.conf

# ---- runtime: Debian slim, the C libraries nova-host and its drivers link, an unprivileged user ----
FROM ${RUNTIME_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libsqlite3-0 libjemalloc2 libcurl4 libstdc++6 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 nova \
 && useradd --uid 10001 --gid nova --home-dir /var/lib/nova-host --no-create-home --shell /usr/sbin/nologin nova \
 && install -d -o nova -g nova /var/lib/nova-host
COPY --from=build /out/usr/ /usr/
RUN mv /usr/lib/swift/nova-host.conf /etc/ld.so.conf.d/nova-host-swift.conf && ldconfig
ENV NOVA_DATA_DIR=/var/lib/nova-host \
    NOVA_DRIVER_CONFIG=/usr/local/share/nova-host/drivers.json \
    NOVA_HOST_CONFIG=/usr/local/share/nova-host/host.json
USER 10001:10001
WORKDIR /var/lib/nova-host
VOLUME ["/var/lib/nova-host"]
EXPOSE 8787
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/bin/curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8787/health"]
ENTRYPOINT ["/usr/local/bin/nova-host"]
CMD ["serve"]
