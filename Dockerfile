# DevGem itself: the one `devgem` binary every function runs (`devgem serve`, FUNCTION_TARGET
# picks the function). scripts/deploy-devgem.sh builds it with Cloud Build; infra/ runs it.
#
# Written for the classic builder as well as BuildKit (`gcloud builds submit --tag` uses the
# classic one), so no cache mounts.

# --- build -------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p devgem \
 && cp target/release/devgem /devgem \
 && strip /devgem

# --- run ---------------------------------------------------------------------------------
# Not distroless: the analyze function fetches repositories with the git CLI
# (shared/local/src/fetch.rs), and git with its HTTPS helper needs a real distribution.
# Debian slim with git and CA certificates only, and no shell user of its own.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --home-dir /home/devgem --create-home --shell /usr/sbin/nologin devgem
COPY --from=build /devgem /usr/local/bin/devgem
# Cloud Run's filesystem is in memory; DevGem's scratch (checkouts, archives) goes here.
ENV DEVGEM_HOME=/tmp/devgem \
    PORT=8080
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/devgem"]
CMD ["serve"]
