#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# https_curl.sh HELLO_HTTP: hello_http --tls checked from outside with curl. The certificate the
# server wrote verifies with --cacert and the page comes back; without it curl refuses the
# server's certificate, and the server says why and goes on serving.
set -eu
bin=$1
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
"$bin" --tls 0 "$dir/cert.pem" >"$dir/out" 2>"$dir/err" &
pid=$!
i=0
until grep -q '^serving on https://' "$dir/out" 2>/dev/null; do
  i=$((i + 1))
  if [ $i -gt 200 ]; then echo "hello_http --tls did not start:"; cat "$dir/err"; exit 1; fi
  sleep 0.05
done
port=$(sed -n 's|^serving on https://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$dir/out")
url="https://localhost:$port/"
page=$(curl -sS --noproxy '*' --max-time 10 --resolve "localhost:$port:127.0.0.1" \
  --cacert "$dir/cert.pem" "$url")
echo "with --cacert: $page"
if curl -sS --noproxy '*' --max-time 10 --resolve "localhost:$port:127.0.0.1" "$url" \
  >/dev/null 2>"$dir/refused"; then
  echo "curl accepted the self-signed certificate without --cacert"
  exit 1
fi
echo "without: $(head -n 1 "$dir/refused")"
page=$(curl -sS --noproxy '*' --max-time 10 --resolve "localhost:$port:127.0.0.1" \
  --cacert "$dir/cert.pem" "$url")
echo "then: $page"
kill -INT "$pid"
wait "$pid" || true
pid=
echo "server said: $(cat "$dir/err")"
