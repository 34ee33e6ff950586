# Build a static cardinal binary and ship it on a distroless base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" -o /out/cardinal ./cmd/cardinal

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cardinal /usr/local/bin/cardinal
COPY configs/quickstart.yaml /etc/cardinal/cardinal.yaml
EXPOSE 9091
# Numeric, so that a pod with runAsNonRoot can verify it (a user name cannot be checked):
# 65532 is distroless's nonroot, the uid deploy/daemonset.yaml runs as.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/cardinal"]
CMD ["--config.file=/etc/cardinal/cardinal.yaml"]
