# canaryd: multi-stage build, small runtime image, non-root user.
#   docker build -t canaryd .
#   docker run -v $PWD/strategies:/etc/canaryd/strategies:ro -v $PWD/auth.yaml:/etc/canaryd/auth.yaml:ro \
#     -e CANARYD_PROMETHEUS_URL=http://prometheus:9090 -p 8080:8080 canaryd
# Listening beyond loopback requires an auth file (CANARYD_AUTH_FILE): canaryd refuses
# to start without one rather than let anyone roll canaries back.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY benches benches
COPY examples examples
RUN cargo build --release --locked --bin canaryd && strip target/release/canaryd

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/canaryd --create-home canaryd
COPY --from=build /src/target/release/canaryd /usr/local/bin/canaryd
USER 10001:10001
WORKDIR /var/lib/canaryd
ENV CANARYD_LISTEN=0.0.0.0:8080 \
    CANARYD_STRATEGIES=/etc/canaryd/strategies \
    CANARYD_AUTH_FILE=/etc/canaryd/auth.yaml \
    CANARYD_DATABASE_URL=sqlite:///var/lib/canaryd/canaryd.db \
    CANARYD_LOG_FORMAT=json
VOLUME ["/var/lib/canaryd"]
EXPOSE 8080
ENTRYPOINT ["canaryd"]
CMD ["serve"]
