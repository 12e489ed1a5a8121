# syntax=docker/dockerfile:1
# The server's image: a static binary (no cgo: the embedded store's SQLite is
# modernc.org/sqlite, pure Go) on distroless/static, run as a non-root user.
# docker-compose.yml builds it; deploy/deploy_test.go runs the build command
# below and checks the result is static (no Docker engine in CI).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags="-s -w" -o /out/ ./cmd/commserver ./cmd/healthcheck
# The embedded store's directory, owned by the runtime user (the runtime
# image has no shell to create it). Unused when MONGODB_URI is set.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot AS runtime
COPY --from=build /out/commserver /out/healthcheck /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV PORT=3000 DATA_DIR=/data LOG_FORMAT=json
EXPOSE 3000
# Liveness only: readiness (/readyz) is the load balancer's and compose's business.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["/usr/local/bin/healthcheck", "/healthz"]
ENTRYPOINT ["/usr/local/bin/commserver"]
