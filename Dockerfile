# wxfed: one static-ish binary (SQLite, libpq and OpenSSL are compiled in).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin wxfed --bin wechat-sim && strip target/release/wxfed target/release/wechat-sim

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/wxfed --create-home wxfed
COPY --from=build /src/target/release/wxfed /src/target/release/wechat-sim /usr/local/bin/
USER wxfed
WORKDIR /var/lib/wxfed
ENV WXFED_BIND=0.0.0.0:8080 \
    WXFED_DATA_DIR=/var/lib/wxfed \
    WXFED_LOG_FORMAT=json
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["wxfed"]
CMD ["serve"]
