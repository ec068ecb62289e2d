#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only those missing.
# Usage: scripts/install-deps.sh build|test|bench
#   build: libcurl (headers + pkg-config), ISA-L (gzip), OpenSSL and libcrypt headers
#   test:  build + promtool, prometheus and the pushgateway, igmpproxy, python3 with PyYAML,
#          curl, nftables, tcpdump, systemd-analyze, setcap, ffmpeg (a real MPEG-TS sender)
#   bench: build + wrk, fping, smokeping_prober, iproute2 (ip netns, ss), and libc headers for
#          the multicast benchmark's C sender (compiled with cc, or the Swift toolchain's clang)
set -euo pipefail
need=()
want_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || need+=("$1"); }

want_pkg pkg-config
want_pkg libcurl4-openssl-dev
want_pkg libisal-dev     # gzip of /metrics and pushes (ISA-L igzip)
want_pkg libssl-dev     # TLS on the HTTP server (Sources/CTLS)
want_pkg libcrypt-dev   # crypt_r for bcrypt basic auth
case "${1:-build}" in
  test)
    want_pkg prometheus
    want_pkg prometheus-pushgateway  # the push lab tests (Tests/lab/test_push.py)
    want_pkg igmpproxy     # the multicast router of the lab (Tests/lab/mcastlab.py)
    want_pkg curl
    want_pkg openssl       # certificates made by the TLS lab tests (Tests/lab/test_tls.py)
    want_pkg python3
    want_pkg iproute2      # the network lab (Tests/lab/netlab.py): ip netns, veth
    want_pkg nftables      # the lab's packet drops and rejects
    want_pkg iputils-ping  # ping from the lab's namespaces
    want_pkg util-linux    # setpriv: lab processes as an unprivileged user
    want_pkg tcpdump
    want_pkg ffmpeg        # a real MPEG-TS / RTP sender for the lab (Tests/lab/test_ffmpeg.py)
    want_pkg systemd       # systemd-analyze verify|security on deploy/systemd (Tests/deploy)
    want_pkg libcap2-bin   # setcap: the container image's file capability (Tests/deploy)
    want_pkg chromium      # the status page in a real browser, headless (Tests/lab/test_status_page.py)
    # PyYAML for the YAML conformance test: from Debian for the system python3 (any other
    # python3 first on PATH, pyenv or a venv, gets it from PyPI below).
    if [ "$(command -v python3 || echo /usr/bin/python3)" = /usr/bin/python3 ]; then want_pkg python3-yaml; fi
    ;;
  bench)
    want_pkg wrk           # also /metrics over TLS vs plain HTTP
    want_pkg fping
    want_pkg prometheus-smokeping-prober
    want_pkg iproute2      # ip netns, veth, ss
    want_pkg libc6-dev     # Benchmarks/mcast_blast.c's headers
    ;;
esac

if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${need[*]}; install them as root: apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ "${1:-build}" = test ] && ! python3 -c 'import yaml' 2>/dev/null; then
  python3 -m pip install --quiet pyyaml
  python3 -c 'import yaml' || { echo "PyYAML is missing: apt-get install python3-yaml (or pip install pyyaml)" >&2; exit 1; }
fi
