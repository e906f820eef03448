# The audiOhm Library Service image. Build: docker build -t audiohm/library-service .
# The protos compile with protox (pure Rust), so the builder needs no protoc.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY migrations migrations
COPY src src
RUN cargo build --release --locked --bin library-service

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/library library
COPY --from=build /src/target/release/library-service /usr/local/bin/library-service
USER 10001
WORKDIR /var/lib/library
# gRPC, gRPC-web, health and reflection on one port; Prometheus metrics on another.
EXPOSE 50051 50052 9090
ENV LIBRARY_LISTEN=0.0.0.0:50051 \
    LIBRARY_METRICS_LISTEN=0.0.0.0:9090 \
    LIBRARY_LOG_FORMAT=json
ENTRYPOINT ["library-service"]
CMD ["serve"]
