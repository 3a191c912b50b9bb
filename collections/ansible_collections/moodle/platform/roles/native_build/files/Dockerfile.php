# PHP extension builder: Debian bookworm with the same php8.2 packages (API 20220829, NTS) as the
# Moodle image, plus clang for ext-php-rs' bindgen.  The Rust toolchain is not packaged for
# bookworm at a recent enough version, so the host's rustup toolchain is mounted read-only at
# /opt/rust (glibc-compatible: the host is Debian 12 too).
FROM moodle-platform/debian:bookworm
# Trust store of the build host (it may sit behind a TLS-inspecting proxy to crates.io).
COPY build-ca.pem /etc/ssl/build-ca.pem
ENV CARGO_HTTP_CAINFO=/etc/ssl/build-ca.pem SSL_CERT_FILE=/etc/ssl/build-ca.pem
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      php8.2-dev php8.2-cli libclang-14-dev clang-14 gcc libc6-dev ca-certificates
ENV CARGO_HOME=/cargo-home PATH=/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
