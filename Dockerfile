# patronsync: one image for the scheduler, the broker and the workers.
FROM debian:bookworm-slim AS build
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential pkg-config libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libhiredis-dev \
      libsqlite3-dev libcsv-dev libsodium-dev libpcre2-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make BUILD=/out all

FROM debian:bookworm-slim
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libzmq5 libprotobuf-c1 libhiredis0.14 libsqlite3-0 libcsv3 libsodium23 libpcre2-8-0 tzdata ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/patronsync patronsync \
    && mkdir -p /var/lib/patronsync /import && chown patronsync /var/lib/patronsync /import
COPY --from=build /out/patron-scheduler /out/patron-broker /out/patron-worker /out/patronctl /usr/local/bin/
USER patronsync
ENV PATRONSYNC_DATA_DIR=/var/lib/patronsync PATRONSYNC_IMPORT_ROOT=/import
# SIGTERM: each process finishes or hands back its work within shutdown_grace_ms.
STOPSIGNAL SIGTERM
CMD ["patron-broker"]
