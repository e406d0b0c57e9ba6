#!/bin/sh
# `make run`: the gateway on CONF plus the two fake backends the default config routes to.
conf=${1:-conf/modelgate.yaml}
build/fakeai --port 9101 --name fake-a &
a=$!
build/fakeai --port 9102 --name fake-b &
b=$!
trap 'kill $a $b 2>/dev/null' EXIT INT TERM
echo "modelgate: fake backends on 127.0.0.1:9101 and :9102; try:"
echo "  curl -s localhost:8080/v1/chat/completions -d '{\"model\":\"demo-chat\",\"messages\":[]}'"
build/modelgate -c "$conf"
