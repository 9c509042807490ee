# The local dev chain for compose: anvil from the npm package @foundry-rs/anvil, installed from the root
# package-lock.json so that it is exactly the version the payment tests run against (1.7.1). Build from the
# repository root:
#
#   docker build -f docker/anvil.Dockerfile -t smalltts-anvil .
#   docker run --rm -p 127.0.0.1:8545:8545 smalltts-anvil
#
# Chain id 84532 (Base Sepolia's), because x402 takes the EIP-712 chain id from the network name
# (eip155:84532), not from the RPC. The chain lives in memory: a restarted container is a fresh chain, and
# compose re-runs the deploy step with it. Anvil's accounts are the well-known public test accounts.

ARG NODE_IMAGE=node:22-bookworm-slim
ARG RUNTIME_IMAGE=debian:bookworm-slim

# --- stage 1: npm ci, then pick the binary of this platform (amd64 or arm64) -------------------------------
FROM ${NODE_IMAGE} AS npm
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund \
    && cp "node_modules/@foundry-rs/anvil-linux-$(dpkg --print-architecture)/bin/anvil" /usr/local/bin/anvil \
    && /usr/local/bin/anvil --version

# --- stage 2: the bare binary (it needs only glibc and libgcc), no node at run time ------------------------
FROM ${RUNTIME_IMAGE}
COPY --from=npm /usr/local/bin/anvil /usr/local/bin/anvil
USER 10001:10001
EXPOSE 8545
# A TCP connect is enough: anvil answers JSON-RPC as soon as it listens. bash's /dev/tcp, as there is no curl.
HEALTHCHECK --interval=2s --timeout=2s --start-period=5s --retries=15 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8545"]
# The binary itself is PID 1 (not the npm `anvil` node wrapper), so `docker stop` really stops the chain.
ENTRYPOINT ["anvil"]
CMD ["--host", "0.0.0.0", "--port", "8545", "--chain-id", "84532"]
