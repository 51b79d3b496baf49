# A small image with the maskprep binary, object-store support included:
#   docker build -t maskprep .
#   docker run --rm -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_REGION \
#     maskprep stats s3://bucket/data/train
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY examples examples
RUN cargo build --release --locked --features store --bin maskprep \
    && strip target/release/maskprep

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/maskprep /usr/local/bin/maskprep
USER 65534:65534
ENTRYPOINT ["maskprep"]
