#!/usr/bin/env bash
# Makes sure the external peers a benchmark needs are installed (Debian packages).
# Usage: scripts/ensure-tools.sh <tool>...   (tools: etcd, curl, dig, dnsperf, dnsmasq, python3-consul, python3-consul2, wrk, nginx, haproxy, openssl, chromium, prometheus, ansible, docker)
# Installs with apt-get when running as root and the tool is missing; otherwise exits 1 and
# prints the exact install line. Prints nothing and exits 0 when everything is there.
set -euo pipefail

missing_pkgs=()
for tool in "$@"; do
  case "$tool" in
    etcd)
      # etcd 3.4 server from Debian (bookworm ships 3.4.23); the bench drives it with the etcd3
      # npm client, so etcd-client (etcdctl) is optional and only installed for manual poking.
      if ! command -v etcd >/dev/null 2>&1; then missing_pkgs+=(etcd-server); fi
      ;;
    curl)
      # The README tour test runs the README's curl commands as written.
      if ! command -v curl >/dev/null 2>&1; then missing_pkgs+=(curl); fi
      ;;
    dig)
      # The DNS integration tests query the agent with real dig.
      if ! command -v dig >/dev/null 2>&1; then missing_pkgs+=(bind9-dnsutils); fi
      ;;
    dnsperf)
      # bench:dns load generator.
      if ! command -v dnsperf >/dev/null 2>&1; then missing_pkgs+=(dnsperf); fi
      ;;
    dnsmasq)
      # bench:dns peer. dnsmasq-base is the binary alone: the dnsmasq package would also start a
      # system resolver on port 53, and the bench starts its own on a loopback port.
      if ! command -v dnsmasq >/dev/null 2>&1 && ! [ -x /usr/sbin/dnsmasq ]; then
        missing_pkgs+=(dnsmasq-base)
      fi
      ;;
    python3-consul)
      # The Consul API tests drive Debian's python-consul 0.7.1 unmodified (it sends GET on
      # deregister and on TTL pass/warn/fail, as Consul did before 1.0).
      # Debian's package lands in Debian's python3; a pyenv or venv python3 earlier on PATH does
      # not see it, so /usr/bin/python3 is asked first (the tests run that one too).
      py=python3; [ -x /usr/bin/python3 ] && py=/usr/bin/python3
      if ! "$py" -c 'import consul' >/dev/null 2>&1; then missing_pkgs+=(python3-consul); fi
      ;;
    wrk)
      # bench:gateway drives every proxy with wrk for maximum throughput.
      if ! command -v wrk >/dev/null 2>&1; then missing_pkgs+=(wrk); fi
      ;;
    nginx)
      # bench:gateway's native peer: nginx proxy_pass with upstream keepalive (nginx-light).
      if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then missing_pkgs+=(nginx-light); fi
      ;;
    haproxy)
      # bench:gateway's peer, and test/integration/dns-haproxy.test.ts, which fills a
      # server-template backend from the agent's SRV answers (bookworm ships 2.6).
      if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then missing_pkgs+=(haproxy); fi
      ;;
    python3-consul2)
      # The Consul Connect tests drive Debian's python3-consul2 0.1.5 unmodified. It conflicts
      # with python3-consul (the other Consul tests' client), so it is never installed: the
      # package is unpacked (apt-get download + dpkg-deb -x) into .tools/python3-consul2 and
      # the test puts that on PYTHONPATH. Its dependencies are installed as usual.
      want_consul2=1
      py=python3; [ -x /usr/bin/python3 ] && py=/usr/bin/python3
      if ! "$py" -c 'import requests' >/dev/null 2>&1; then missing_pkgs+=(python3-requests); fi
      if ! "$py" -c 'import six' >/dev/null 2>&1; then missing_pkgs+=(python3-six); fi
      ;;
    openssl)
      # The mesh CA tests check its certificates with the real openssl (x509 -text, verify); the
      # sidecar's mTLS tests connect with `openssl s_client`, with and without certificates.
      if ! command -v openssl >/dev/null 2>&1; then missing_pkgs+=(openssl); fi
      ;;
    chromium)
      # The dashboard's browser tests (test/e2e/ui.test.ts) drive Debian's chromium with
      # playwright-core (which downloads no browser of its own).
      if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then missing_pkgs+=(chromium); fi
      ;;
    prometheus)
      # test/e2e/prometheus-scrape.test.ts scrapes the agent, sidecars and gateway with Debian's
      # Prometheus (bookworm ships 2.42) and queries its HTTP API.
      if ! command -v prometheus >/dev/null 2>&1; then missing_pkgs+=(prometheus); fi
      ;;
    ansible)
      # test/integration/consul-client-ansible.test.ts runs `ansible localhost -m
      # community.general.consul_kv` against the agent. Debian's ansible bundles the
      # community.general collection; its consul modules import python-consul (python3-consul,
      # checked here too), in Debian's /usr/bin/python3.
      if ! command -v ansible >/dev/null 2>&1; then missing_pkgs+=(ansible); fi
      py=python3; [ -x /usr/bin/python3 ] && py=/usr/bin/python3
      if ! "$py" -c 'import consul' >/dev/null 2>&1; then missing_pkgs+=(python3-consul); fi
      ;;
    docker)
      # test/e2e/sync-docker.test.ts starts a private dockerd (docker.io brings dockerd and
      # containerd; the tests talk to it through dockerode, not the docker CLI) and imports an
      # image made of the static busybox (busybox-static: the container has no libc to link).
      if ! command -v dockerd >/dev/null 2>&1 && [ ! -x /usr/sbin/dockerd ]; then missing_pkgs+=(docker.io); fi
      if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
        missing_pkgs+=(busybox-static)
      fi
      ;;
    *)
      echo "ensure-tools: unknown tool '$tool' (known: etcd, curl, dig, dnsperf, dnsmasq, python3-consul, python3-consul2, wrk, nginx, haproxy, openssl, chromium, prometheus, ansible, docker)" >&2
      exit 2
      ;;
  esac
done

if [ "${want_consul2:-0}" = 1 ]; then
  consul2="$(cd "$(dirname "$0")/.." && pwd)/.tools/python3-consul2"
  if [ ! -f "$consul2/usr/lib/python3/dist-packages/consul/base.py" ]; then
    if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
      echo "ensure-tools: python3-consul2 is unpacked from Debian's package with apt-get download and dpkg-deb, which this machine lacks" >&2
      exit 1
    fi
    echo "ensure-tools: unpacking python3-consul2 into $consul2" >&2
    dl="$(mktemp -d)"
    chmod 777 "$dl" # apt-get download runs as _apt where it can
    if ! (cd "$dl" && apt-get download -qq python3-consul2 >&2); then
      if [ "$(id -u)" -ne 0 ]; then
        echo "ensure-tools: apt-get download python3-consul2 failed; run: sudo apt-get update" >&2
        exit 1
      fi
      apt-get update -qq >&2
      (cd "$dl" && apt-get download -qq python3-consul2 >&2)
    fi
    mkdir -p "$consul2"
    dpkg-deb -x "$dl"/python3-consul2_*.deb "$consul2"
    rm -rf "$dl"
  fi
fi

[ "${#missing_pkgs[@]}" -eq 0 ] && exit 0

line="apt-get install -y --no-install-recommends ${missing_pkgs[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-tools: missing ${missing_pkgs[*]}; install with:" >&2
  echo "  sudo $line" >&2
  exit 1
fi

echo "ensure-tools: installing ${missing_pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# An empty package list means `apt-get update` never ran on this machine.
if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$' || true)" ]; then
  apt-get update -qq >&2
fi
if ! $line >&2; then
  # A stale list can point at versions that are gone: refresh once and retry.
  apt-get update -qq >&2
  $line >&2
fi
# The Debian package starts an etcd service where an init system runs; the benchmarks start
# their own member on a free port, so stop that one if it came up.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd >&2 || true
fi
# Same for nginx and haproxy: bench:gateway runs its own, on free loopback ports.
for svc in nginx haproxy; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" >&2 || true
  fi
done
